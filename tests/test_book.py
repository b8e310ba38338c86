"""utils.book and utils.plots: seed, setup line, progress callback, figure helpers."""

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from utils import book, plots  # noqa: E402


@pytest.mark.parametrize(
    ("environ", "seed"), [({}, 42), ({"BOOK_SEED": ""}, 42), ({"BOOK_SEED": " 7 "}, 7)]
)
def test_seed_from_environment(environ, seed):
    assert book.seed_from_environment(environ) == seed


@pytest.mark.parametrize("raw", ["abc", "4.2", "-1"])
def test_bad_book_seed_is_a_value_error(raw):
    with pytest.raises(ValueError, match="BOOK_SEED"):
        book.seed_from_environment({"BOOK_SEED": raw})


def test_setup_book_seeds_and_reports(capsys, monkeypatch):
    monkeypatch.setenv("BOOK_SEED", "3")
    assert book.setup_book() == 3
    first = np.random.rand(3)
    book.setup_book()
    assert np.array_equal(first, np.random.rand(3))
    line = capsys.readouterr().out.splitlines()[0]
    assert "TensorFlow" in line and "Keras 3." in line and "BOOK_SEED=3" in line
    assert "CPU" in line or "GPU" in line


def test_setup_book_turns_tensor_float_32_off(capsys):
    import tensorflow as tf

    # TensorFlow's default
    tf.config.experimental.enable_tensor_float_32_execution(True)
    book.setup_book(0)
    assert not tf.config.experimental.tensor_float_32_execution_enabled()
    assert "| TF32 off |" in capsys.readouterr().out


class FakeGpuConfig:
    """Stands in for tf.config's device functions: two GPUs, optionally already initialised."""

    def __init__(self, initialised=False, growth_before=False):
        self.gpus = ["GPU:0", "GPU:1"]
        self.initialised, self.growth = (
            initialised,
            dict.fromkeys(self.gpus, growth_before),
        )

    def list_physical_devices(self, kind=None):
        return self.gpus if kind == "GPU" else ["CPU:0", *self.gpus]

    def set_memory_growth(self, gpu, enable):
        if self.initialised and self.growth[gpu] != enable:
            raise RuntimeError(
                "Physical devices cannot be modified after being initialized"
            )
        self.growth[gpu] = enable

    def get_memory_growth(self, gpu):
        return self.growth[gpu]


@pytest.mark.parametrize(
    ("initialised", "growth_before", "environ", "expected"),
    [
        (False, False, {}, "memory growth on"),
        (True, True, {}, "memory growth on"),
        (True, False, {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}, "memory growth on"),
        (
            True,
            False,
            {},
            "memory growth off (TensorFlow used the GPU before setup_book",
        ),
    ],
)
def test_configure_gpus_turns_memory_growth_on_for_every_gpu(
    monkeypatch, initialised, growth_before, environ, expected
):
    import tensorflow as tf

    fake = FakeGpuConfig(initialised, growth_before)
    monkeypatch.setattr(tf.config, "list_physical_devices", fake.list_physical_devices)
    monkeypatch.setattr(
        tf.config.experimental, "set_memory_growth", fake.set_memory_growth
    )
    monkeypatch.setattr(
        tf.config.experimental, "get_memory_growth", fake.get_memory_growth
    )
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    report = book.configure_gpus()
    assert report.startswith("TF32 off | ") and expected in report
    if not initialised:
        assert all(fake.growth.values())


def test_cpu_threads_follows_tensorflows_rule():
    assert book.cpu_threads({"TF_NUM_INTRAOP_THREADS": "3"}) == 3
    # 0 means "one per core"
    assert book.cpu_threads({"TF_NUM_INTRAOP_THREADS": "0"}) >= 1
    assert book.cpu_threads({}) >= 1


@pytest.mark.parametrize("seed", [-1, 1.5, "42", True])
def test_setup_book_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        book.setup_book(seed)


def test_epoch_logger_prints_every_n_epochs_and_the_last(capsys):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2)), np.zeros((8, 1))
    model.fit(
        x, y, epochs=5, verbose=0, callbacks=[book.EpochLogger(every=2, name="tiny")]
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["2", "4", "5"]
    assert lines[0].startswith("tiny: epoch") and "loss" in lines[0]


def test_epoch_logger_prints_the_epoch_where_early_stopping_ended(capsys):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2)), np.zeros((8, 1))
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1.0)
    model.fit(x, y, epochs=50, verbose=0, callbacks=[stop, book.EpochLogger(every=20)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["2"]


def test_epoch_logger_rejects_bad_interval():
    with pytest.raises(ValueError, match="every"):
        book.EpochLogger(every=0)


def test_learning_curves_plot_train_and_validation():
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}
    ax = plots.plot_learning_curves({"rnn": history}, title="demo")
    assert (
        ax.get_title() == "demo" and ax.get_xlabel() == "epoch" and len(ax.lines) == 2
    )


def test_learning_curves_reject_missing_metric():
    with pytest.raises(ValueError, match="no metric 'accuracy'"):
        plots.plot_learning_curves({"rnn": {"loss": [1.0]}}, metric="accuracy")
    with pytest.raises(ValueError, match="empty"):
        plots.plot_learning_curves({})
