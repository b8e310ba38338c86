"""utils.tasks: the one-bit recall task and the latch."""

import numpy as np
import pytest

from utils import tasks
from utils.tasks import build_recall_model, make_recall_task


def test_the_bit_sits_lag_steps_before_the_end_and_gives_the_label():
    x, y = make_recall_task(np.random.default_rng(0), 50, 20, 7)
    assert x.shape == (50, 20, 2) and x.dtype == np.float32
    nonzero = np.argwhere(x[:, :, 0] != 0)
    assert (nonzero[:, 1] == 13).all() and len(nonzero) == 50
    assert np.array_equal(y, (x[:, 13, 0] > 0).astype("float32"))
    assert set(np.unique(x[:, :, 1])) == {-1.0, 1.0}


def test_one_lag_per_sequence():
    lags = np.array([1, 5, 20])
    x, _ = make_recall_task(np.random.default_rng(1), 3, 20, lags)
    assert np.array_equal(np.argmax(np.abs(x[:, :, 0]), axis=1), 20 - lags)


@pytest.mark.parametrize("lag", [0, 21, 2.5, [3, 4]])
def test_rejects_a_bad_lag(lag):
    with pytest.raises(ValueError, match="lag"):
        make_recall_task(np.random.default_rng(0), 3, 20, lag)


def test_the_model_reads_two_channels_and_answers_a_probability():
    model = build_recall_model(20)
    x, _ = make_recall_task(np.random.default_rng(2), 4, 20, 3)
    out = model.predict(x, verbose=0)
    assert out.shape == (4, 1) and ((out > 0) & (out < 1)).all()
    assert model.optimizer.global_clipnorm == 1.0


def test_a_frozen_recurrence_keeps_its_weights():
    model = build_recall_model(20, hidden_size=4, train_recurrence=False)
    x, y = make_recall_task(np.random.default_rng(0), 64, 20, 5)
    before = [w.copy() for w in model.layers[0].get_weights()]
    readout_before = model.layers[1].get_weights()[0].copy()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(before, model.layers[0].get_weights(), strict=True)
    )
    assert not np.array_equal(readout_before, model.layers[1].get_weights()[0]), (
        "the readout still learns"
    )


@pytest.mark.parametrize("noise", [None, 0.3])
def test_the_latch_target_is_the_sign_of_the_latest_signal(noise):
    inputs, targets, lags = tasks.make_latch_task(
        np.random.default_rng(0), 50, noise=noise
    )
    assert inputs.shape == (
        50,
        tasks.LATCH_LENGTH,
        1 if noise is None else 2,
    ) and targets.shape == (50, 96, 1)
    values = inputs[..., 0]
    is_signal = (values != 0) if noise is None else inputs[..., 1] == 1
    assert is_signal[:, 0].all() and np.all(np.isin(values[is_signal], [-1.0, 1.0]))
    assert 0.02 < is_signal[:, 1:].mean() < 0.06, (
        "signals arrive at about the rate asked for"
    )
    for row in range(50):
        for step in range(96):
            latest = max(s for s in range(step + 1) if is_signal[row, s])
            assert lags[row, step] == step - latest and targets[row, step, 0] == (
                values[row, latest] > 0
            )
    if noise is None:
        assert np.all(values[~is_signal] == 0)
    else:
        assert 0.25 < values[~is_signal].std() < 0.35, (
            "noise of the standard deviation asked for between signals"
        )


def test_the_latch_refuses_bad_settings():
    with pytest.raises(ValueError, match="noise"):
        tasks.make_latch_task(np.random.default_rng(0), 5, noise=-1)
    with pytest.raises(ValueError, match="signal_rate"):
        tasks.make_latch_task(np.random.default_rng(0), 5, signal_rate=0)
