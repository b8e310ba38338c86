"""One training step of a layer at several sequence lengths: what chapters 7 and 11 time.

`training_steps` builds, for every length, a model of the layer and a `Dense(1)` on top, and returns
functions that each run one `train_on_batch` on a batch of ones; `utils.measure.interleaved_seconds`
times them taking turns.
"""

from functools import partial

import keras
import numpy as np


class SelfAttentionBlock(keras.layers.Layer):
    """Multi-head self-attention (4 heads of 16) with a residual connection: one transformer sublayer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attention = keras.layers.MultiHeadAttention(num_heads=4, key_dim=16)

    def call(self, inputs):
        return inputs + self.attention(inputs, inputs)


def training_steps(name, make_layer, lengths, width=64, batch_size=8):
    """{(name, length): one train_on_batch of make_layer() + Dense(1), on a model built for that length}."""
    steps = {}
    for length in lengths:
        model = keras.Sequential(
            [keras.Input((int(length), width)), make_layer(), keras.layers.Dense(1)]
        )
        model.compile(optimizer="adam", loss="mse")
        batch = np.ones((batch_size, int(length), width), dtype="float32")
        targets = np.zeros(model.compute_output_shape(batch.shape), dtype="float32")
        steps[name, int(length)] = partial(model.train_on_batch, batch, targets)
    return steps
