"""Keras compiles models as it would on a GPU: with this folder on PYTHONPATH (`make test-xla`), every
Python process, Jupyter kernels included, imports this module at start-up.

With `jit_compile="auto"` (the default of `Model.compile`), Keras uses XLA only when TensorFlow sees
a GPU, and then for every model whose layers all allow it (`keras/src/trainers/trainer.py`,
`_resolve_auto_jit_compile` and `model_supports_jit`). An `LSTM` or `GRU` layer whose settings cuDNN
accepts says it does not, but only when a GPU is present (`cudnn_ok` in
`keras/src/backend/tensorflow/rnn.py`). Both choices are made here as on a GPU, so the chapters' models
meet XLA on the CPU exactly where they would on a reader's GPU. The layers themselves still run their
generic loop (the backend's own cuDNN check is untouched): there is no cuDNN on a CPU.
"""

import importlib

import keras.src.backend as _backend
from keras.src.trainers import trainer as _trainer

# the module, not its function rnn()
_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")


def _cudnn_ok_on_a_gpu(
    activation, recurrent_activation, unroll, use_bias, reset_after=None
):
    if reset_after is None:
        return _tf_rnn._do_lstm_arguments_support_cudnn(
            activation=activation,
            recurrent_activation=recurrent_activation,
            unroll=unroll,
            use_bias=use_bias,
        )
    return _tf_rnn._do_gru_arguments_support_cudnn(
        activation=activation,
        recurrent_activation=recurrent_activation,
        unroll=unroll,
        use_bias=use_bias,
        reset_after=reset_after,
    )


_backend.cudnn_ok = (
    _cudnn_ok_on_a_gpu  # what LSTM.__init__ and GRU.__init__ read to set supports_jit
)
_trainer.Trainer._resolve_auto_jit_compile = lambda model: _trainer.model_supports_jit(
    model
)
