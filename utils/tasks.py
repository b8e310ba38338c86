"""Synthetic tasks: the order task of chapter 1, which chapter 7 gives to a transformer; the one-bit
recall task of chapter 2, which chapter 3 reruns with a gated cell; and the latch of chapter 8, which
chapter 11 makes noisy."""

import keras
import numpy as np

# tokens 0-11; sequences of 12 tokens in training
ORDER_VOCABULARY, ORDER_LENGTH = (12, 12)
TOKEN_A, TOKEN_B = 1, 2  # fillers are tokens 3-11


def make_order_task(num_sequences, rng, seq_len=ORDER_LENGTH, region=None):
    """Random sequences with one A and one B (at positions in range(*region), default
    anywhere); label 1 when A comes first."""
    if region is not None and not 0 <= region[0] < region[1] <= seq_len:
        raise ValueError(f"region must lie within 0..{seq_len}; got {region!r}")
    tokens = rng.integers(3, ORDER_VOCABULARY, size=(num_sequences, seq_len))
    allowed = np.arange(*(region or (seq_len,)))
    if len(allowed) < 2:
        raise ValueError(f"the region {region!r} has no room for both A and B")
    for row in tokens:
        pos_a, pos_b = rng.choice(allowed, size=2, replace=False)
        row[pos_a], row[pos_b] = TOKEN_A, TOKEN_B
    labels = (
        np.argmax(tokens == TOKEN_A, axis=1) < np.argmax(tokens == TOKEN_B, axis=1)
    ).astype("float32")
    return tokens, labels


def make_recall_task(rng, num_sequences, seq_len, lag):
    """Inputs (num_sequences, seq_len, 2) and labels for recalling one bit `lag` steps
    before the end.

    Channel 0 holds a sign ±1 at step seq_len - lag and 0 everywhere else, so the bit
    marks its own position; channel 1 holds ±1 noise at every step. The label is 1 when
    the sign was +1. `lag` is one number, or one per sequence, each from 1 to seq_len.
    """
    lags = np.asarray(lag)
    if (
        not np.issubdtype(lags.dtype, np.integer)
        or lags.ndim > 1
        or (lags.ndim == 1 and len(lags) != num_sequences)
    ):
        raise ValueError(
            f"lag must be a whole number or one per sequence ({num_sequences}); got"
            f" {lag!r}"
        )
    if np.any(lags < 1) or np.any(lags > seq_len):
        raise ValueError(
            f"every lag must be from 1 to seq_len = {seq_len}; got {lag!r}"
        )
    bits = rng.choice([-1.0, 1.0], size=num_sequences)
    x = np.zeros((num_sequences, seq_len, 2), dtype="float32")
    x[np.arange(num_sequences), seq_len - lags, 0] = bits
    x[:, :, 1] = rng.choice([-1.0, 1.0], size=(num_sequences, seq_len))
    return x, (bits > 0).astype("float32")


def build_recall_model(
    seq_len, hidden_size=32, layer_type=keras.layers.SimpleRNN, train_recurrence=True
):
    """A recurrent layer of `hidden_size` units and a sigmoid readout of its last state,
    compiled with Adam(3e-3), the gradient clipped to global norm 1, and binary
    cross-entropy: the model both chapters train on the task. With
    `train_recurrence=False` the recurrent layer stays at its initial weights and only
    the readout learns."""
    model = keras.Sequential(
        [
            keras.Input((seq_len, 2)),
            layer_type(hidden_size),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.layers[0].trainable = train_recurrence
    model.compile(
        keras.optimizers.Adam(3e-3, global_clipnorm=1.0),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


LATCH_LENGTH, LATCH_SIGNAL_RATE = 96, 0.04


def make_latch_task(
    rng, num_sequences, noise=None, length=LATCH_LENGTH, signal_rate=LATCH_SIGNAL_RATE
):
    """The latch: at every step, output 1 when the most recent signal was +1. Returns
    inputs, targets (num_sequences, length, 1) in {0, 1} and the lag since the most
    recent signal at every step.

    Each step is a signal (+1 or -1, drawn with probability `signal_rate`; the first
    step always is one) or not. Without `noise` the inputs are
    (num_sequences, length, 1): the signal, else 0. With `noise` they are
    (num_sequences, length, 2): the signal or else Gaussian noise of that standard
    deviation, and a flag that is 1 at the signals."""
    if noise is not None and not noise >= 0:
        raise ValueError(
            f"noise must be None or a standard deviation >= 0; got {noise!r}"
        )
    if not 0 < signal_rate <= 1:
        raise ValueError(f"signal_rate must be in (0, 1]; got {signal_rate!r}")
    is_signal = rng.random((num_sequences, length)) < signal_rate
    is_signal[:, 0] = True
    signs = rng.choice([-1.0, 1.0], size=is_signal.shape)
    if noise is None:
        inputs = np.where(is_signal, signs, 0.0)[..., None]
    else:
        values = np.where(is_signal, signs, noise * rng.normal(size=is_signal.shape))
        inputs = np.stack([values, is_signal], axis=-1)
    last_signal = np.maximum.accumulate(
        np.where(is_signal, np.arange(length), 0), axis=1
    )
    targets = (np.take_along_axis(signs, last_signal, axis=1) > 0).astype("float32")
    return inputs.astype("float32"), targets[..., None], np.arange(length) - last_signal
