# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,jupyter,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 10 — From notebook to production: save, restore, stream, and scale out
#
# A model that works in a notebook is half of the job. The other half is what every practitioner
# meets next: the model must be saved with its custom layers and loaded back elsewhere, a training
# run must survive a crash, a server must answer one time step at a time for many users at once, the
# data must arrive from an input pipeline fast enough, and training must move to more devices or
# machines than one. This chapter does each of these with a small recurrent forecaster of Seattle's
# weather, on a laptop's CPU, and checks each step the way the rest of the book checks its claims:
# the saved model predicts what the trained one did, the restarted run ends with the weights of the
# uninterrupted one, the stream answers what the batch answers, and two worker processes end with
# the weights of one process.
#
# **You will learn to**
# - save a model with a custom layer as a `.keras` file and load it back, see what breaks when a
#   layer cannot describe itself, and keep the best weights with `ModelCheckpoint`;
# - serve a recurrent model one step at a time, with a [stateful](glossary.md#stateful-rnn) layer
#   or with the state kept outside the model, count what each stream costs in memory, and export
#   the serving functions in raw units as a [SavedModel](glossary.md#savedmodel);
# - build windows in a `tf.data` pipeline and measure what prefetching buys;
# - resume an interrupted `fit` with `BackupAndRestore`, and see what reproducibility needs and costs;
# - train on two devices with `tf.distribute.MirroredStrategy`, and on two worker processes with
#   `MultiWorkerMirroredStrategy` and a custom training loop, restart a failed worker from its
#   checkpoint, and scale the learning rate with the batch.
#
# **Prerequisites**: chapter 1 (the [persistence baseline](glossary.md#persistence-baseline),
# generation one step at a time), chapter 3 (GRU), chapter 8 (training well). Chapters 7 and 11 for
# the comparison with a transformer's cache.
#
# **Run time**: about a minute on a 2-core CPU (the README's table has the measured time); not yet
# measured on a GPU.

# %% jupyter={"source_hidden": true} tags=["bootstrap"]
# Finds the book's helpers (utils/) and data/ in the folders above this notebook. A notebook on its own
# (Colab, Kaggle) first fetches the book from BOOK_REPOSITORY, set with `python -m utils.bootstrap`.
import pathlib
import subprocess
import sys

BOOK_REPOSITORY = ""
here = pathlib.Path.cwd().resolve()
marker = pathlib.Path("utils", "bootstrap.py")
book_root = next(
    (p for p in (here, *here.parents) if (p / marker).is_file()), here / "rnn-book"
)
if not (book_root / marker).is_file():
    if not BOOK_REPOSITORY:
        raise RuntimeError(
            f"no utils/ in {here} or above it, and no BOOK_REPOSITORY to fetch the book"
            " from: open the notebook inside the book, or see 'Colab and Kaggle' in"
            " the README"
        )
    print(
        f"fetching the book from {BOOK_REPOSITORY} into {book_root} (on Kaggle:"
        " Settings, Internet on)"
    )
    subprocess.run(
        ["git", "clone", "--quiet", "--depth=1", BOOK_REPOSITORY, str(book_root)],
        check=True,
    )
if str(book_root) not in sys.path:
    sys.path.insert(0, str(book_root))
if book_root == here / "rnn-book":
    from utils.bootstrap import install_missing

    install_missing()

# %% tags=["nbval-ignore-output"]
import atexit
import contextlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

# Two logical CPU devices for section 5's MirroredStrategy: this must happen before
# TensorFlow first runs anything, so it comes before setup_book (a restarted kernel is
# needed to change it).
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

from utils import distributed  # noqa: E402
from utils.book import EpochLogger, gpu_available, setup_book  # noqa: E402
from utils.data import load_seattle_weather  # noqa: E402

# noqa: E402
from utils.measure import interleaved_seconds, median_seconds, paired_ratio

seed = setup_book()
layers = keras.layers
# models, checkpoints, the workers' job
work_dir = Path(tempfile.mkdtemp(prefix="rnn-book-chapter-10-"))
# also removed when the kernel shuts down
atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
print(
    "logical CPU devices:",
    [device.name for device in tf.config.list_logical_devices("CPU")],
)

# %% [markdown]
# ## 1. The model, and saving it
#
# The task is chapter 1's: tomorrow's highest temperature in Seattle from the last two weeks of
# weather (highest and lowest temperature, precipitation, wind), trained on 2012-2013, validated on
# 2014 and tested on 2015. The features are standardised with the training statistics.

# %%
FEATURES = ("temp_max", "temp_min", "precipitation", "wind")
WINDOW = 14  # days the model reads
weather = {split: load_seattle_weather(split) for split in ("train", "valid", "test")}
daily = {
    split: np.stack([columns[name] for name in FEATURES], axis=-1)
    for split, columns in weather.items()
}
feature_mean, feature_std = daily["train"].mean(axis=0), daily["train"].std(axis=0)


def standardise(days):
    return ((days - feature_mean) / feature_std).astype("float32")


def windows(days):
    """Every run of WINDOW standardised days, and the next day's standardised highest
    temperature."""
    scaled = standardise(days)
    x = np.stack(
        [scaled[start : start + WINDOW] for start in range(len(scaled) - WINDOW)]
    )
    return x, scaled[WINDOW:, :1]


(x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (
    windows(daily[s]) for s in ("train", "valid", "test")
)
for name, x in (("train", x_train), ("valid", x_valid), ("test", x_test)):
    print(
        f"{name:>5}: {x.shape[0]} windows of {x.shape[1]} days x {x.shape[2]} features"
    )

# %% [markdown]
# Chapter 1 found the persistence baseline (tomorrow is like today) hard to beat, so the model
# builds on it: a GRU reads the window and predicts a *correction* that a small custom layer adds
# to today's highest temperature. The layer takes one argument, the column to persist. The model
# reads windows of any length (`None` in the input shape), which section 2 will need.


# %%
class PersistPlusCorrection(layers.Layer):
    """Add the network's correction to the last day's value of one feature: tomorrow =
    today + correction."""

    def __init__(self, feature_index, **kwargs):
        super().__init__(**kwargs)
        self.feature_index = feature_index

    def call(self, inputs):
        window, correction = inputs
        return window[:, -1, self.feature_index : self.feature_index + 1] + correction


def build_forecaster(persist_layer, hidden_size=16):
    days = keras.Input((None, len(FEATURES)), name="days")
    summary = layers.GRU(hidden_size, name="gru")(days)
    correction = layers.Dense(1, name="correction")(summary)
    return keras.Model(days, persist_layer([days, correction]), name="forecaster")


def mse(model, x, y):
    return float(np.mean((keras.ops.convert_to_numpy(model(x)) - y) ** 2))


def largest_difference(weights, other_weights):
    """The largest absolute difference between two lists of weight arrays of the same
    shapes."""
    return max(
        float(np.abs(a - b).max()) for a, b in zip(weights, other_weights, strict=True)
    )


# %% [markdown]
# Keras 3 saves a model as one `.keras` file: a zip archive holding the architecture as JSON (each
# layer's `get_config()`), the weights, and the optimizer's state. Loading calls each layer's class
# with its config. Two things go wrong with a custom layer, and the next cell shows both. First,
# Keras records a layer's constructor arguments by itself only when they are plain Python values
# (`int`, `float`, `str`, `bool`, `None`, and lists and dicts of them); here the feature's index
# comes from NumPy (as it does when you look it up in an array of column names), a NumPy `int64` is
# not a Python `int`, and saving fails. Second, even with a plain `int`, loading fails: the loader
# finds the class by its registered name, and this class was never registered.

# %%
column_names = np.array(FEATURES)
numpy_index = np.flatnonzero(column_names == "temp_max")[0]  # np.int64, not int
print("the index is a", type(numpy_index).__name__)
try:
    build_forecaster(PersistPlusCorrection(numpy_index)).save(work_dir / "broken.keras")
except NotImplementedError as error:
    print("saving fails:", type(error).__name__, "-", " ".join(str(error).split()[:23]))
build_forecaster(PersistPlusCorrection(int(numpy_index))).save(
    work_dir / "unregistered.keras"
)
# Keras's message starts with a generic line; the cause comes at the end
try:
    keras.models.load_model(work_dir / "unregistered.keras")
except TypeError as error:
    cause = str(error).split("Exception encountered: ")[-1].split(". Make sure")[0]
    print("loading fails:", type(error).__name__, "-", cause)

# %% [markdown]
# The fix is two lines of habit for every custom layer: register it under a package name with
# `keras.saving.register_keras_serializable`, and write `get_config` yourself, returning plain
# Python values (`int(...)`, `float(...)`, lists), so that no argument depends on Keras guessing.
# And keep the class in a module, not in a notebook: any other process that loads the file must
# import it first (section 5 meets this).


# %%
@keras.saving.register_keras_serializable(package="rnn_book")
class PersistPlus(PersistPlusCorrection):
    """PersistPlusCorrection that saves and loads: registered, with its own
    get_config."""

    def get_config(self):
        return {**super().get_config(), "feature_index": int(self.feature_index)}


keras.utils.set_random_seed(seed)
model = build_forecaster(PersistPlus(numpy_index))
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
print(
    f"{model.count_params()} parameters; the custom layer's config:"
    f" {model.layers[-1].get_config()['feature_index']}"
)

# %% [markdown]
# We train it for a fixed number of epochs and let `ModelCheckpoint(save_best_only=True)` write the
# model to disk whenever the validation loss reaches a new low, so the best epoch is kept even when
# later epochs overfit.

# %% tags=["nbval-ignore-output"]
best_path = work_dir / "best.keras"
history = model.fit(
    x_train,
    y_train,
    validation_data=(x_valid, y_valid),
    epochs=20,
    batch_size=32,
    verbose=0,
    callbacks=[
        keras.callbacks.ModelCheckpoint(
            best_path, monitor="val_loss", save_best_only=True
        ),
        EpochLogger(every=5),
    ],
)
val_losses = history.history["val_loss"]
best_model = keras.models.load_model(best_path)
persistence = {
    split: float(np.mean((x[:, -1, :1] - y) ** 2))
    for split, x, y in (("valid", x_valid, y_valid), ("test", x_test, y_test))
}
print(
    f"best epoch {np.argmin(val_losses) + 1}: validation MSE {min(val_losses):.4f}; the"
    f" file's model: {mse(best_model, x_valid, y_valid):.4f}; persistence:"
    f" {persistence['valid']:.4f}"
)
assert np.isclose(mse(best_model, x_valid, y_valid), min(val_losses), rtol=1e-4), (
    "the file holds the best epoch"
)
assert mse(best_model, x_test, y_test) < persistence["test"], (
    "the correction improves on persistence in 2015"
)

# %% [markdown]
# The file holds the epoch with the lowest validation loss (asserted), and on the test year the
# model beats persistence (asserted). Now the round trip: the last epoch's model, saved and loaded,
# predicts exactly what it predicted before, and the loaded layer is our registered class.

# %%
model.save(work_dir / "forecaster.keras")
reloaded = keras.models.load_model(work_dir / "forecaster.keras")
print(
    "loaded layer:",
    type(reloaded.layers[-1]).__name__,
    "| registered as",
    keras.saving.get_registered_name(PersistPlus),
)
print(
    "predictions equal after the round trip:",
    np.array_equal(
        reloaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0)
    ),
)
assert np.array_equal(
    reloaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0)
)

# %% [markdown]
# ## 2. Serving one step at a time
#
# A forecaster in production does not get a window of 14 days; it gets one new day at a time, for
# each of many weather stations, and must answer after each. A recurrent model is made for this: its
# state summarises the past, so each new day costs one step. Keras offers a **stateful** layer, which
# keeps its final state and starts the next call from it. It needs a fixed batch size (one row per
# stream) and the trained weights. We serve three streams, and after every day compare the answer
# with the trained model reading the whole prefix of days at once.

# %%
STREAMS = 3
streaming = keras.Sequential(
    [
        keras.Input(batch_shape=(STREAMS, 1, len(FEATURES))),
        layers.GRU(16, stateful=True),
    ],
    name="stateful_gru",
)
correction_layer, persist_layer = model.get_layer("correction"), model.layers[-1]
streaming.set_weights(model.get_layer("gru").get_weights())

stream_days = x_test[:STREAMS]  # three two-week stretches of 2015, fed day by day
streaming.layers[0].reset_state()
for day in range(WINDOW):
    today = stream_days[:, day : day + 1]
    answer = persist_layer([today, correction_layer(streaming(today))]).numpy()
    batch_answer = model(stream_days[:, : day + 1]).numpy()
    assert np.allclose(answer, batch_answer, atol=1e-5), (
        f"day {day + 1}: the stream and the batch disagree"
    )
print(
    f"{STREAMS} streams, {WINDOW} days: after every day the stateful model answered"
    " what the batch model answered on the whole prefix (to 1e-5)"
)

# %% [markdown]
# A stateful layer ties the streams to the rows of one batch, which suits a fixed set of sensors.
# A web service whose users come and go usually keeps the state *outside* the model: one step
# function maps (today, state) to (forecast, new state), and the states live in a store keyed by
# user, so any server can answer any user. The GRU's cell is that step function.

# %%
gru_cell = model.get_layer("gru").cell


def forecast_next_day(today, state):
    """One day in, tomorrow's forecast out: (forecast, new state). `today` is
    (streams, features)."""
    output, new_state = gru_cell(today, state)
    forecast = persist_layer([today[:, None, :], correction_layer(output)])
    # NumPy: what a store keeps
    return np.asarray(forecast), [np.asarray(part) for part in new_state]


states = {}  # station -> its GRU state; a server would keep this in a key-value store
for station, days in enumerate(x_test[:STREAMS]):
    states[station] = [np.zeros((1, gru_cell.units), "float32")]
    for today in days:
        forecast, states[station] = forecast_next_day(today[None, :], states[station])
    assert np.allclose(forecast, model(days[None]).numpy(), atol=1e-5)
print(
    f"stored state per station: {states[0][0].size} floats = {states[0][0].nbytes}"
    " bytes, whatever the day"
)

# %% [markdown]
# The state per stream is the GRU's 16 numbers, the same on day 14 and on day 10,000. A transformer
# decoder that serves a stream one step at a time keeps a *cache* of every past step's keys and
# values in every layer (chapter 7), so its memory per stream grows with the stream's length; the
# linear recurrences of chapter 11 get the recurrent network's constant state back. The table counts
# floats for our GRU and for a small two-layer transformer with 64-dimensional keys and values.


# %%
def transformer_cache_floats(num_layers, model_dim, steps):
    # one key and one value vector per layer and step
    return 2 * num_layers * model_dim * steps


print(f"{'steps':>8} {'GRU(16) state':>14} {'transformer cache':>18}")
for steps in (WINDOW, 365, 10_000):
    print(
        f"{steps:>8,} {gru_cell.units:>14,}"
        f" {transformer_cache_floats(2, 64, steps):>18,}"
    )

# %% [markdown]
# ### Exporting the server's functions
#
# A `.keras` file needs Python, Keras and our custom layer's code to load. For serving, Keras writes
# a **SavedModel** instead: a directory with the computation as a TensorFlow
# graph and the weights, which TensorFlow Serving, TensorFlow Lite's converter and TensorFlow's other
# language bindings load without any Python code of ours (the TensorFlow guide "Using the SavedModel
# format"). A SavedModel is a program, not data: load only those you trust.
#
# What goes in must be what a client can send. Our model reads *standardised* features, and the
# training statistics live in this notebook; a client has degrees Celsius, millimetres and metres
# per second. So the exported functions take raw units and return degrees, with the statistics
# inside the graph. `keras.export.ExportArchive` writes two entry points (signatures): `forecast`
# for whole windows, and `step`, the step function above, for one day and a state. Both run the
# GRU's cell, not the `GRU` layer: on a GPU the layer would be traced into NVIDIA's cuDNN kernel,
# and the exported graph would then run only where there is a GPU. TensorFlow Serving expects a
# numbered version directory, so the archive goes to `serving/1`.

# %%
mean_constant, std_constant = (
    tf.constant(feature_mean, "float32"),
    tf.constant(feature_std, "float32"),
)


# the trained cell, run over the days by a plain loop (never cuDNN)
gru_over_days = layers.RNN(gru_cell)


def forecast_celsius(raw_days):
    """Raw windows (streams, days, 4) in C, mm, m/s -> tomorrow's highest temperature in
    C."""
    days = (raw_days - mean_constant) / std_constant
    forecast = persist_layer([days, correction_layer(gru_over_days(days))])
    return {"forecast": forecast[:, 0] * std_constant[0] + mean_constant[0]}


def step_celsius(raw_today, state):
    """One raw day (streams, 4) and the GRU state -> tomorrow in C, and the new
    state."""
    today = (raw_today - mean_constant) / std_constant
    output, new_state = gru_cell(today, [state])
    forecast = persist_layer([today[:, None, :], correction_layer(output)])
    return {
        "forecast": forecast[:, 0] * std_constant[0] + mean_constant[0],
        "state": new_state[0],
    }


# %% [markdown]
# The archive tracks the model (its variables) and takes each function with the shapes and types of
# its inputs; writing it logs a line about a temporary directory, which the cell keeps quiet.

# %%
archive = keras.export.ExportArchive()
archive.track(model)
archive.add_endpoint(
    "forecast",
    forecast_celsius,
    input_signature=[
        tf.TensorSpec([None, None, len(FEATURES)], tf.float32, name="raw_days")
    ],
)
archive.add_endpoint(
    "step",
    step_celsius,
    input_signature=[
        tf.TensorSpec([None, len(FEATURES)], tf.float32, name="raw_today"),
        tf.TensorSpec([None, gru_cell.units], tf.float32, name="state"),
    ],
)
tf_logger, logger_level = tf.get_logger(), tf.get_logger().level
# writing logs an INFO line that names our temporary directory
tf_logger.setLevel("ERROR")
try:
    archive.write_out(work_dir / "serving" / "1", verbose=False)
finally:
    tf_logger.setLevel(logger_level)
print("written:", sorted(path.name for path in (work_dir / "serving" / "1").iterdir()))

# %% [markdown]
# A server loads the directory with no Keras and no code of ours. We serve the raw days of 2015 both
# ways and compare with the Keras model (standardised in, degrees out by hand); a new stream starts
# from a state of zeros:

# %%
served = tf.saved_model.load(str(work_dir / "serving" / "1"))
print("signatures:", sorted(served.signatures))
exported_ops = {
    node.op
    for signature in served.signatures.values()
    for function in signature.graph.as_graph_def().library.function
    for node in function.node_def
}
assert not any("Cudnn" in op for op in exported_ops), (
    "the exported graph runs without a GPU"
)
assert set(served.signatures["serving_default"].structured_outputs) == {"forecast"}, (
    "the default is forecast"
)
raw_test_windows = np.stack(
    [daily["test"][start : start + WINDOW] for start in range(len(x_test))]
)
expected_celsius = model(x_test).numpy()[:, 0] * feature_std[0] + feature_mean[0]
served_celsius = served.forecast(raw_test_windows)["forecast"].numpy()
state = np.zeros((len(x_test), gru_cell.units), "float32")
for day in range(WINDOW):  # every 2015 window at once, one day at a time
    stepped = served.step(raw_test_windows[:, day], state)
    state = stepped["state"]
print(
    "forecast and step agree with the Keras model (to 1e-4 degrees):",
    np.allclose(served_celsius, expected_celsius, atol=1e-4),
    np.allclose(stepped["forecast"].numpy(), expected_celsius, atol=1e-4),
)
assert np.allclose(served_celsius, expected_celsius, atol=1e-4)
assert np.allclose(stepped["forecast"].numpy(), expected_celsius, atol=1e-4)

# %% [markdown]
# That was this notebook's process, which knows `PersistPlus`. The real test is a fresh Python
# process that imports TensorFlow and nothing of ours:

# %% tags=["nbval-ignore-output"]
np.save(work_dir / "raw_test_windows.npy", raw_test_windows)
serving_program = (
    "import sys, numpy as np, tensorflow as tf; served ="
    " tf.saved_model.load(sys.argv[1]); np.save(sys.argv[3],"
    " served.forecast(np.load(sys.argv[2]))['forecast'].numpy())"
)
serving_run = subprocess.run(
    [
        sys.executable,
        "-c",
        serving_program,
        str(work_dir / "serving" / "1"),
        str(work_dir / "raw_test_windows.npy"),
        str(work_dir / "served.npy"),
    ],
    capture_output=True,
    timeout=120,
    env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
)
if serving_run.returncode != 0:  # show why, not only that it failed
    print(serving_run.stderr.decode("utf-8", "replace")[-2000:])
    serving_run.check_returncode()
fresh_process_celsius = np.load(work_dir / "served.npy")
print(
    "a fresh process served the same forecasts:",
    np.allclose(fresh_process_celsius, expected_celsius, atol=1e-4),
)
assert np.allclose(fresh_process_celsius, expected_celsius, atol=1e-4)

# %% [markdown]
# Both entry points give the Keras model's forecasts in degrees, for all 351 windows of 2015, in
# this process and in a fresh one on the CPU (asserted), and no operation in the exported graphs
# needs cuDNN (asserted; it can only fail where the model was built on a GPU). The third signature,
# `serving_default`, is the one a client gets when it names none (here, `forecast`, asserted).
# `saved_model_cli show --dir serving/1 --all`, a command that comes with TensorFlow, lists the
# signatures with their inputs and outputs, which is what a client's developer reads.

# %% [markdown]
# ## 3. Feeding the model: `tf.data`
#
# So far the windows were NumPy arrays built in memory. With data that does not fit in memory, or
# arrives from files, the windows are cut in a `tf.data` pipeline.
# `keras.utils.timeseries_dataset_from_array` cuts them from the daily table (the target of the
# window starting at day *i* is `targets[i]`); `cache` keeps the result after the first pass,
# `shuffle` draws a new order each pass, and `prefetch` prepares the next batches while the model
# trains on the current one. First the check that the pipeline gives exactly our arrays.

# %%
train_days = standardise(daily["train"])
pipeline_windows = keras.utils.timeseries_dataset_from_array(
    train_days[:-1],
    train_days[WINDOW:, :1],
    sequence_length=WINDOW,
    batch_size=64,
    shuffle=False,
)
x_pipeline, y_pipeline = (
    np.concatenate(parts)
    for parts in zip(*pipeline_windows.as_numpy_iterator(), strict=True)
)
print(
    "pipeline:",
    x_pipeline.shape,
    "| equal to the arrays:",
    np.array_equal(x_pipeline, x_train) and np.array_equal(y_pipeline, y_train),
)
assert np.array_equal(x_pipeline, x_train) and np.array_equal(y_pipeline, y_train)
training_pipeline = (
    pipeline_windows.unbatch()
    .cache()
    .shuffle(len(x_train), seed=seed)
    .batch(64)
    .prefetch(tf.data.AUTOTUNE)
)
first_pass, second_pass = (
    [float(t) for _, targets in training_pipeline for t in targets[:, 0]]
    for _ in range(2)
)
assert sorted(first_pass) == sorted(second_pass) == sorted(y_train[:, 0].tolist()), (
    "every window, once per pass"
)
assert first_pass != second_pass, "a new order in each pass"

# %% [markdown]
# What does prefetching buy? When reading a batch takes time (a disk, a network, a decoder), the
# model waits for it, unless the next batch is read while the model trains. We simulate a read that
# waits as long as one training step takes (a sleep, which uses no processor, like waiting for a
# disk), with a wider GRU(128) so that a step costs more than the forecaster's, and time two epochs
# at a time, three ways, in turns so that the machine's other work falls on all alike: with
# prefetching switched off entirely, with `tf.data`'s defaults, and with an explicit
# `prefetch(tf.data.AUTOTUNE)` (which lets `tf.data` choose how many batches to prepare).

# %% tags=["nbval-ignore-output"]
speed_model = build_forecaster(PersistPlus(0), hidden_size=128)
step_optimizer = keras.optimizers.Adam(1e-3)


@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(speed_model(x, training=True) - y))
    step_optimizer.apply_gradients(
        zip(
            tape.gradient(loss, speed_model.trainable_variables),
            speed_model.trainable_variables,
            strict=True,
        )
    )
    return loss


step_seconds = median_seconds(
    lambda: train_step(x_train[:64], y_train[:64]), repeats=15
)


# %% [markdown]
# The simulated read sleeps as long as a step and counts itself; `without_prefetch` switches off
# the prefetch that `tf.data` would insert on its own; `most_reads_ahead` trains one pass and
# reports how far the reads ran ahead of the training (used below).

# %%
reads_begun = 0  # counted by the read itself, whichever thread runs it


def wait_then_pass(x, y):
    global reads_begun
    reads_begun += 1
    time.sleep(step_seconds)  # the read: as long as a training step
    return x, y


def slow_reads(dataset):
    read = lambda x, y: tf.py_function(wait_then_pass, [x, y], [tf.float32, tf.float32])
    return dataset.map(read)


def without_prefetch(dataset):
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = (
        False  # tf.data's own prefetch after a map
    )
    return dataset.with_options(options)


def run_epoch(dataset):
    for x, y in dataset:
        train_step(x, y)


def most_reads_ahead(dataset):
    """Train on `dataset` and return the largest number of reads that had begun, at the
    end of a step, beyond the batches trained on so far: 0 if every read waits for the
    training to ask for its batch."""
    global reads_begun
    reads_begun, ahead = 0, []
    for steps_done, (x, y) in enumerate(dataset, start=1):
        train_step(x, y)
        ahead.append(reads_begun - steps_done)
    return max(ahead)


# %% [markdown]
# Two epochs at a time, the three pipelines in turns:

# %% tags=["nbval-ignore-output"]
# two epochs
epoch_data = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(64).repeat(2)
epoch_seconds = interleaved_seconds(
    {
        "no prefetch": lambda: run_epoch(without_prefetch(slow_reads(epoch_data))),
        "defaults": lambda: run_epoch(slow_reads(epoch_data)),
        "prefetch": lambda: run_epoch(
            slow_reads(epoch_data).prefetch(tf.data.AUTOTUNE)
        ),
    },
    rounds=9,
)
prefetch_speedup = paired_ratio(epoch_seconds, "no prefetch", "prefetch")
default_speedup = paired_ratio(epoch_seconds, "no prefetch", "defaults")
reading_seconds = len(epoch_data) * step_seconds  # the time two epochs spend in reads


def seconds_saved(seconds, pipeline):
    """Median over the rounds of the time that `pipeline` saved against no
    prefetching."""
    return float(np.median(np.subtract(seconds["no prefetch"], seconds[pipeline])))


print(
    f"one step {1000 * step_seconds:.1f} ms, one read as long; against no prefetching,"
    f" epochs are {prefetch_speedup:.2f}x faster with prefetch and"
    f" {default_speedup:.2f}x with tf.data's defaults;"
)
print(
    f"saved per two epochs: {seconds_saved(epoch_seconds, 'prefetch'):.3f} s and"
    f" {seconds_saved(epoch_seconds, 'defaults'):.3f} s of the {reading_seconds:.3f} s"
    " spent reading"
)

# %% [markdown]
# With reads as slow as the training steps, an epoch that waits for each read takes about the sum of
# the two, and a prefetching one about the larger of the two: at best twice as fast. The time saved
# also includes each read's start-up and the waking of the sleeping thread, so it can exceed the
# time spent sleeping, and a busy machine makes it vary from run to run. So the book asserts what
# prefetching *does*, without a clock: the read counts itself, and after every training step we look
# at how many reads have begun beyond the batches trained on.

# %% tags=["nbval-ignore-output"]
reads_ahead = {
    "no prefetch": most_reads_ahead(without_prefetch(slow_reads(epoch_data))),
    "defaults": most_reads_ahead(slow_reads(epoch_data)),
    "prefetch": most_reads_ahead(slow_reads(epoch_data).prefetch(tf.data.AUTOTUNE)),
}
print("most reads begun ahead of training, at the end of any step:", reads_ahead)
assert reads_ahead["no prefetch"] == 0, "without prefetching, every read waits its turn"
assert min(reads_ahead["defaults"], reads_ahead["prefetch"]) >= 1, (
    "both prefetching pipelines read the next batch while the model trains"
)

# %% [markdown]
# Without prefetching no read ever begins before the training asks for its batch; with it, the
# next batch is being read while the model trains (both asserted). The surprise is the defaults:
# `tf.data` inserted a prefetch after our `map` by itself (the `inject_prefetch` optimisation, on
# by default), and what it inserts is the same operation as the explicit
# `prefetch(tf.data.AUTOTUNE)`; the two read ahead alike. What that buys depends on the machine and
# the moment: check it with a clock, as above. When the read costs processor time instead of
# waiting, prefetch helps only as far as there are idle cores to read on, and
# `num_parallel_calls=tf.data.AUTOTUNE` in `map` reads several batches at once.

# %% [markdown]
# ## 4. Surviving a crash
#
# A long training run dies for dull reasons: a preempted cloud machine, a laptop that sleeps, an
# out-of-memory error in epoch 37. `keras.callbacks.BackupAndRestore` saves the model, the optimizer
# and the epoch counter at the end of every epoch into a directory; a `fit` started with the same
# callback finds the backup, loads it and goes on from the epoch after it, and the backup is deleted
# when training ends normally. We interrupt a run in the middle of its fourth epoch (a callback raises
# an error, as a crash would), start it again, and compare with a run that was never interrupted.
#
# Equal weights need equal computations. On a CPU with a fixed number of threads, the kernels this
# model uses give the same result on every run. On a GPU some do not (additions done in whatever
# order the threads finish, and cuDNN's choice among algorithms), and
# `tf.config.experimental.enable_op_determinism()` asks TensorFlow for deterministic ones; the cell
# turns it on there, for the length of the cell (TensorFlow has a public switch to turn it on but
# none to turn it off, so `op_determinism` below uses the internal one that TensorFlow's own tests
# use).

# %%
from tensorflow.python.framework import config as tf_internal_config  # noqa: E402


@contextlib.contextmanager
def op_determinism():
    """Deterministic TensorFlow operations inside the `with` block only."""
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        tf_internal_config.disable_op_determinism()


class PowerCut(keras.callbacks.Callback):
    """Raise an error in the middle of one epoch, as a crash would."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.crash_epoch, self.crash_batch = epoch, batch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (self.crash_epoch, self.crash_batch):
            raise RuntimeError(
                f"power cut in epoch {self.epoch + 1}, after batch {batch + 1}"
            )


def fresh_model():
    keras.utils.set_random_seed(seed)
    fresh = build_forecaster(PersistPlus(0))
    fresh.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return fresh


# %% tags=["nbval-ignore-output"]
fit_options = dict(epochs=6, batch_size=32, verbose=0)
backup_dir = work_dir / "backup"
with op_determinism() if gpu_available() else contextlib.nullcontext():
    uninterrupted = fresh_model()
    uninterrupted.fit(x_train, y_train, **fit_options)
    interrupted = fresh_model()
    try:
        interrupted.fit(
            x_train,
            y_train,
            **fit_options,
            callbacks=[
                keras.callbacks.BackupAndRestore(backup_dir),
                PowerCut(epoch=3, batch=10),
            ],
        )
    except RuntimeError as error:
        print("first run:", error, "| backup on disk:", backup_dir.exists())
    # a new process would start like this: a fresh model, the same callback
    restarted = fresh_model()
    resumed_history = restarted.fit(
        x_train,
        y_train,
        **fit_options,
        callbacks=[keras.callbacks.BackupAndRestore(backup_dir)],
    )
print(
    "second run trained epochs",
    [epoch + 1 for epoch in resumed_history.epoch],
    "| backup left:",
    backup_dir.exists(),
)
resume_difference = largest_difference(
    restarted.get_weights(), uninterrupted.get_weights()
)
print(f"largest weight difference from the uninterrupted run: {resume_difference:.1e}")
assert resumed_history.epoch == [3, 4, 5], (
    "the restart trains only the epochs the crash lost"
)
assert resume_difference <= 1e-6, (
    "the resumed run ends where the uninterrupted one does"
)
assert not backup_dir.exists(), "a finished run removes its backup"

# %% [markdown]
# The restart trained only the three epochs the crash lost and ended with the weights of the
# uninterrupted run (asserted). That needs one more thing: the batches of each epoch must be the same
# in both runs. They are, for a reason worth knowing. Keras 3 (3.15 here) shuffles NumPy arrays with
# a TensorFlow random operation inside a dataset that it reads afresh in every epoch; once a global
# seed is set (as `setup_book` does), that operation starts from the same state each time, and the
# *same* permutation comes back in every epoch. The next cell shows it with a layer that records the
# order in which it sees eight examples.


# %% tags=["nbval-ignore-output"]
class RecordOrder(layers.Layer):
    """Pass inputs through; remember their first column, in the order seen
    (the model runs eagerly)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, inputs):
        self.seen.append(keras.ops.convert_to_numpy(inputs[:, 0]).astype(int).tolist())
        return inputs


recorder = RecordOrder()
probe = keras.Sequential([keras.Input((1,)), recorder, layers.Dense(1)])
probe.compile(optimizer="sgd", loss="mse", run_eagerly=True)
probe.fit(
    np.arange(8.0)[:, None],
    np.zeros(8),
    batch_size=8,
    epochs=3,
    shuffle=True,
    verbose=0,
)
probe.fit(
    np.arange(8.0)[:, None],
    np.zeros(8),
    batch_size=8,
    epochs=1,
    shuffle=True,
    verbose=0,
)
print("order in epochs 1, 2, 3, and in a second fit:", recorder.seen)
assert recorder.seen[0] != list(range(8)) and all(
    order == recorder.seen[0] for order in recorder.seen
)
recorder.seen.clear()
tf.random.set_seed(None)  # no global seed for TensorFlow's random operations...
probe.fit(
    np.arange(8.0)[:, None],
    np.zeros(8),
    batch_size=8,
    epochs=3,
    shuffle=True,
    verbose=0,
)
keras.utils.set_random_seed(seed)  # ...and back to the book's seed
print("without a global seed:", recorder.seen)
assert len({tuple(order) for order in recorder.seen}) > 1, (
    "without a seed, the order changes"
)

# %% [markdown]
# The examples are shuffled once, and that order repeats in every epoch, and even in the next call
# of `fit` (asserted). That is a side effect of seeding, not a design: without a global seed the
# order changes from epoch to epoch (asserted), and a later Keras may seed each epoch's shuffle with
# the epoch number. It costs some of what shuffling is for (every chapter of this book that calls
# `fit(shuffle=True)` after `setup_book` sees one order in every epoch), and it makes a restart exact
# by luck. Do not rely on it: make the order a function of the epoch number (section 5's training
# loop does), or save the input pipeline's position with the model (`tf.train.Checkpoint` can hold
# a `tf.data` iterator). A `tf.data` pipeline with `shuffle(..., reshuffle_each_iteration=True)` and
# neither of these starts its sequence of orders again after a restart (asserted below), and the
# resumed run then sees other batches than an uninterrupted one.


# %%
def epoch_orders(dataset, epochs):
    return [[int(value) for value in dataset] for _ in range(epochs)]


first_run = epoch_orders(tf.data.Dataset.range(8).shuffle(8, seed=seed), epochs=4)
# a fresh pipeline
after_restart = epoch_orders(tf.data.Dataset.range(8).shuffle(8, seed=seed), epochs=1)
print(
    "epoch 4 of the first run:",
    first_run[3],
    "| epoch 4 after a restart at epoch 4:",
    after_restart[0],
)
assert after_restart[0] == first_run[0] != first_run[3], (
    "the restarted pipeline replays epoch 1's order"
)

# %% [markdown]
# ### What determinism costs
#
# On a GPU, deterministic kernels are slower and an operation that has none raises an error. On any
# device, a random operation with no seed (neither its own nor a global one) raises an error once
# determinism is on. The cost we can
# see on a CPU is in `tf.data`: its documentation says that with determinism on, a pipeline whose
# functions hold stateful operations runs them serially and loses its prefetching, and our simulated
# read (`tf.py_function`) is stateful. We count the reads ahead and time section 3's epochs again,
# inside `op_determinism()`.

# %% tags=["nbval-ignore-output"]
with op_determinism():
    deterministic_ahead = most_reads_ahead(slow_reads(epoch_data))
    deterministic_seconds = interleaved_seconds(
        {
            "no prefetch": lambda: run_epoch(without_prefetch(slow_reads(epoch_data))),
            "defaults": lambda: run_epoch(slow_reads(epoch_data)),
        },
        rounds=9,
    )
print(
    f"with op determinism, most reads begun ahead: {deterministic_ahead};"
    " tf.data's defaults saved"
    f" {seconds_saved(deterministic_seconds, 'defaults'):.3f} s of the"
    f" {reading_seconds:.3f} s spent reading (without it:"
    f" {seconds_saved(epoch_seconds, 'defaults'):.3f} s)"
)
assert deterministic_ahead == 0, "prefetching is off: every read waits its turn"

# %% [markdown]
# With determinism on, no read begins ahead any more (asserted), and the time saved falls to about
# nothing (printed; the clock is noisy, so this is not asserted). A pipeline without stateful
# functions keeps its prefetch. The documentation separates two cases: a `map` whose function draws
# random numbers runs serially (no parallel calls), while other stateful operations, like our
# Python call, also switch prefetching off for the whole pipeline; its advice for random
# augmentation is stateless random operations (`tf.random.stateless_uniform` and its kin).

# %% [markdown]
# ## 5. Scaling out with `tf.distribute`
#
# When one device is too slow, the usual next step is **data parallelism**: every device holds a
# copy of the model (a [replica](glossary.md#replica)), each global batch is split between the
# replicas, each replica computes the gradients of its share, an
# [all-reduce](glossary.md#all-reduce) adds the gradients up so that every replica holds the sum, and
# every replica applies the same update to its copy. The copies never drift apart, and the result is
# the update one device would make with the whole batch. `tf.distribute.MirroredStrategy` does this
# on the devices of one machine, `MultiWorkerMirroredStrategy` across machines.
#
# Why the sum is the right gradient: let $\ell_i(w)$ be the loss of example $i$ at the weights $w$,
# and split a global batch of $B$ examples into the disjoint shares $S_1, \dots, S_N$ of $N$
# replicas. The gradient of the batch's mean loss is
#
# $$\nabla_w \frac{1}{B} \sum_{i=1}^{B} \ell_i(w)
# = \sum_{r=1}^{N} \nabla_w \Big( \frac{1}{B} \sum_{i \in S_r} \ell_i(w) \Big),$$
#
# so every example must weigh $1/B$ in its replica's loss, and the all-reduce adds the replicas'
# gradients. A replica can divide its share's summed loss by the *global* $B$ (our loop below does),
# or divide its share's mean by $N$, as Keras does; the two agree when the shares are equal.


# %%
def draw_data_parallel(ax):
    boxes = {
        "global batch of B examples": (0.5, 0.88),
        "replica 1\nmodel copy, B/2 examples": (0.25, 0.6),
        "replica 2\nmodel copy, B/2 examples": (0.75, 0.6),
        "all-reduce: g = g1 + g2\n(each replica gets g)": (0.5, 0.32),
        "the same update on every copy: w <- w - lr * g": (0.5, 0.08),
    }
    for text, (x, y) in boxes.items():
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle="round", fc="white", ec="0.3"),
        )
    arrows = [
        ((0.45, 0.84), (0.28, 0.66), "first half"),
        ((0.55, 0.84), (0.72, 0.66), "second half"),
        ((0.25, 0.54), (0.45, 0.37), "gradients g1"),
        ((0.75, 0.54), (0.55, 0.37), "gradients g2"),
        ((0.5, 0.27), (0.5, 0.12), ""),
    ]
    for (x0, y0), (x1, y1), label in arrows:
        ax.annotate(
            "", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="0.3")
        )
        ax.text(
            (x0 + x1) / 2 + (0.07 if x1 > x0 else -0.07),
            (y0 + y1) / 2,
            label,
            ha="center",
            fontsize=8,
        )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        title="One training step of data parallelism with two replicas",
        xlabel="replicas side by side",
        ylabel="order of the step (top to bottom)",
        xticks=[],
        yticks=[],
    )


fig, ax = plt.subplots(figsize=(8, 4.5))
draw_data_parallel(ax)
plt.show()

# %% [markdown]
# Our machine has no second GPU, but TensorFlow can split its CPU into two *logical* devices (the
# setup cell did), and `MirroredStrategy` treats them as two devices. They share the same two cores,
# so this shows what the strategy computes, not a speed-up. A model built and compiled
# inside `strategy.scope()` is mirrored, and Keras's `fit` then does everything in the figure. With a
# global batch of 64, each replica gets 32 examples per step; trained on one device with batch 64,
# the same model should end with the same weights. (We turn shuffling off here so that both runs see
# the same batches without relying on the seed.)

# %% tags=["nbval-ignore-output"]
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
# the reference, on the CPU even where a GPU is
one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
print("replicas in sync:", mirrored.num_replicas_in_sync)


def mirrored_against_single(num_examples):
    """Largest weight difference after 2 epochs of fit: two replicas against one device,
    global batch 64."""
    with one_device.scope():
        single_model = fresh_model()
    with mirrored.scope():
        mirrored_model = fresh_model()
        # the same start (a seed alone does not promise it)
        mirrored_model.set_weights(single_model.get_weights())
    for one_model in (mirrored_model, single_model):
        one_model.fit(
            x_train[:num_examples],
            y_train[:num_examples],
            epochs=2,
            batch_size=64,
            shuffle=False,
            verbose=0,
        )
    return largest_difference(mirrored_model.get_weights(), single_model.get_weights())


even_examples = len(x_train) // 64 * 64
mirrored_difference = {
    count: mirrored_against_single(count) for count in (even_examples, len(x_train))
}
for count, difference in mirrored_difference.items():
    print(
        f"{count} examples (last batch {count % 64 or 64}): largest weight difference"
        f" {difference:.1e}"
    )
assert mirrored_difference[even_examples] < 1e-5, (
    "two replicas with B/2 each make the updates of one device with B"
)
assert mirrored_difference[len(x_train)] > 1e-4, (
    "an uneven last batch makes the two runs differ"
)

# %% [markdown]
# With 704 examples, every batch has 64 examples and the two runs agree to rounding
# (asserted below 1e-5): splitting a batch and adding the gradients only changes the order of the
# additions. With all 717 examples they differ by far more (asserted above 1e-4): the last batch of
# 13 cannot be split evenly between two replicas, and with 7 examples on one and 6 on the other,
# the replicas' mean losses no longer weigh every example alike: Keras averages the replicas' mean
# losses, $\frac{1}{N} \sum_r \frac{1}{|S_r|} \sum_{i \in S_r} \ell_i$, which is the batch mean
# only when all shares $|S_r|$ are equal. Here each example on the replica with 7 weighs $1/14$,
# each on the replica with 6 weighs $1/12$, where one device gives each of the 13 the weight
# $1/13$. Use batch sizes and `drop_remainder=True` (or data sizes) that divide evenly when results
# must match.
#
# Across machines, Keras 3's `fit` does not work with `MultiWorkerMirroredStrategy` (Keras issue
# 20585: the distributed batches reach code that expects tensors). The way that works is a **custom
# training loop**, which is also what you write when `fit` does not do what you need. Ours is in
# `utils/distributed.py`, so that the worker processes below can import it; here it is. Three things
# make it correct under any strategy: the variables are created in `strategy.scope()`, each replica's
# loss is divided by the *global* batch size (so that the all-reduced sum of gradients is the
# gradient of the batch mean), and `strategy.run` runs the step on every replica.

# %%
print(inspect.getsource(distributed.train_with_loop))

# %% [markdown]
# The same loop, on one device (the first CPU) and on the two logical CPUs, from the same
# saved initial model. The worker processes below will load that file too, and another process can
# load only layers whose code it imports: `PersistPlus` lives in this notebook, so from here on the
# forecaster is made of built-in layers only (a GRU and a dense layer that predicts the temperature
# itself).

# %% tags=["nbval-ignore-output"]
loop_settings = dict(global_batch=64, epochs=4, learning_rate=0.02, shuffle_seed=seed)
keras.utils.set_random_seed(seed)
initial_model = keras.Sequential(
    [keras.Input((None, len(FEATURES))), layers.GRU(16), layers.Dense(1)]
)
distributed.write_job(
    work_dir / "job", initial_model, x_train, y_train, **loop_settings
)
loop_weights = {}
for name, strategy in (("one device", one_device), ("two logical CPUs", mirrored)):
    with strategy.scope():
        loop_model = keras.models.load_model(
            work_dir / "job" / "model.keras", compile=False
        )
    print(f"{name}:")
    distributed.train_with_loop(strategy, loop_model, x_train, y_train, **loop_settings)
    loop_weights[name] = loop_model.get_weights()
loop_difference = largest_difference(*loop_weights.values())
print(f"largest weight difference: {loop_difference:.1e}")
assert loop_difference < 1e-5

# %% [markdown]
# ### Two worker processes
#
# `MultiWorkerMirroredStrategy` runs one process per machine (a *worker*), each with its own copy of
# the model; the workers find each other through the `TF_CONFIG` environment variable, which lists
# every worker's address and says which one this process is, and they all-reduce the gradients over
# the network. We start two workers on this machine, with addresses on the loopback interface
# (127.0.0.1) and ports that were free a moment before. `distributed.run_workers` starts them, prints
# what they print, and stops them however the cell ends (each worker also leaves on its own when the
# notebook's kernel dies). The workers read the job from disk: the untrained model we saved, the
# data and the loop's settings.
#
# **A warning before you run the next cells.** Whatever address `TF_CONFIG` gives it, TensorFlow's
# server in each worker listens on *every* network interface of the machine, and it runs whatever
# computation it is sent, without asking who sends it (TensorFlow's `SECURITY.md` says so). For the
# seconds these cells run, anyone who can reach this machine's ports could run code as you. On a
# laptop on a public network, run them only behind a firewall that blocks incoming connections; if
# your system asks whether Python may accept incoming connections, say no (the workers talk over
# 127.0.0.1 and do not need it). First, what Keras's `fit` does under this strategy:

# %% tags=["nbval-ignore-output"]
job_dir = work_dir / "job"
exit_codes, worker_lines = distributed.run_workers(job_dir, try_fit=True)
assert exit_codes == [0, 0] and all(
    "Keras fit failed" in line for line in worker_lines
), worker_lines

# %% [markdown]
# `fit` fails on both workers, as Keras issue 20585 reports. Our loop, on two workers with the same
# global batch of 64 (32 per worker), should end with the weights of the single device. Each
# worker builds the whole input pipeline and keeps its own share of every batch
# (`experimental_distribute_dataset` shards our arrays in memory that way); with data in files,
# its default policy shards by file, so that no worker reads what it then throws away, and
# `distribute_datasets_from_function` gives you full control.

# %% tags=["nbval-ignore-output"]
exit_codes, worker_lines = distributed.run_workers(job_dir)
worker_weights = [
    list(np.load(job_dir / f"worker-{index}.npz").values()) for index in range(2)
]
workers_agree = largest_difference(*worker_weights) == 0
worker_difference = largest_difference(worker_weights[0], loop_weights["one device"])
print(
    f"workers hold equal weights: {workers_agree} | largest difference from one device:"
    f" {worker_difference:.1e}"
)
assert exit_codes == [0, 0] and workers_agree and worker_difference < 1e-5

# %% [markdown]
# Both workers hold identical weights (the all-reduce hands both the same sum), equal to the single
# device's to rounding (asserted).
#
# On a cluster, a worker dies now and then. The others then block in their next all-reduce until
# TensorFlow's health check gives up on the missing worker and fails them too, and the cluster
# manager (Kubernetes, Slurm) starts all workers again; they must go on from their last checkpoint
# rather than from scratch. Our loop saves a checkpoint after every epoch, each worker into its own
# directory (on a shared file system, the usual rule is that the first worker, the *chief*, writes
# the real checkpoint and the others write to temporary places). Worker 1 now fails in the middle
# of the third epoch; `run_workers` stops worker 0, as a cluster manager would, and we start the job
# again.

# %% tags=["nbval-ignore-output"]
for index in range(2):
    # the uninterrupted run's checkpoints: start afresh
    shutil.rmtree(job_dir / f"checkpoints-{index}")
exit_codes, _ = distributed.run_workers(job_dir, crash_at_epoch=2)
print("exit codes after the failure:", exit_codes)
assert exit_codes[1] == 3 and exit_codes[0] != 0, (
    "worker 1 failed and worker 0 was stopped"
)
exit_codes, worker_lines = distributed.run_workers(job_dir)
resumed_weights = list(np.load(job_dir / "worker-0.npz").values())
resumed_difference = largest_difference(resumed_weights, worker_weights[0])
print(f"largest difference from the uninterrupted workers: {resumed_difference:.1e}")
assert exit_codes == [0, 0] and all(
    "going on at epoch 3" in line for line in worker_lines if "restored" in line
)
assert (
    sum("restored" in line for line in worker_lines) == 2 and resumed_difference <= 1e-6
)

# %% [markdown]
# Both workers restored the checkpoint of epoch 2, trained epochs 3 and 4, and ended with the weights
# of the run that never failed (asserted). The epoch whose middle was lost is simply trained again,
# which is why checkpoints every epoch (or every N steps, for long epochs) are the price of fault
# tolerance. Keras's `BackupAndRestore` of section 4 does the same for `fit` under the strategies where
# `fit` works, and `tf.distribute.experimental.PreemptionCheckpointHandler` saves a custom loop's
# checkpoint when the cloud announces that it will take a machine away.
#
# ### A larger batch needs a larger learning rate
#
# More replicas usually mean a larger global batch, and so fewer steps per epoch. Goyal et al. (2017)
# trained ImageNet models with batches up to 8,192 by the **linear scaling rule**: multiply the batch
# by *k*, multiply the learning rate by *k* (with a warm-up at the start). Its reason: *k* steps of
# plain SGD with rate $\eta$ on disjoint batches $\mathcal{B}_1, \dots, \mathcal{B}_k$ of equal size,
# where $L_{\mathcal{B}}(w) = \frac{1}{|\mathcal{B}|} \sum_{i \in \mathcal{B}} \ell_i(w)$ and $w_t$ are
# the weights after step $t$, move the weights by
# $-\eta \sum_{j=1}^{k} \nabla L_{\mathcal{B}_j}(w_{t+j-1})$, and while $\eta$ is small the weights
# barely move between those steps, so this is close to
# $-k\eta \, \nabla L_{\mathcal{B}_1 \cup \dots \cup \mathcal{B}_k}(w_t)$, one
# step with rate $k\eta$ on a batch $k$ times the size (the mean gradient over the union is the mean
# of the $k$ batch gradients). Our loop uses momentum $m = 0.9$: the same argument holds for the
# effective rate $\eta / (1 - m)$ once the momentum has built up, over about $1 / (1 - m) = 10$
# steps, at a cost of about $m / (1 - m) = 9$ steps of progress at every batch size: a larger share
# of a run with fewer steps. We try it
# on our forecaster with the same loop on one device, on the first 640 windows (so that batches of
# 16, 64 and 128 are all full), for eight epochs from the same initial weights, from a small learning
# rate, where that reasoning applies. The rule does not
# promise a better result at a larger batch; it promises the *same* result as the small batch.

# %% tags=["nbval-ignore-output"]
x_scaling, y_scaling = x_train[:640], y_train[:640]


def validation_after_training(batch, rate):
    with one_device.scope():
        run_model = keras.models.load_model(job_dir / "model.keras", compile=False)
    distributed.train_with_loop(
        one_device,
        run_model,
        x_scaling,
        y_scaling,
        global_batch=batch,
        epochs=8,
        learning_rate=rate,
        shuffle_seed=seed,
        log=lambda line: None,
    )
    loss = mse(run_model, x_valid, y_valid)
    return loss if np.isfinite(loss) else np.inf  # a run that diverged


small_rate, factors = 0.002, (1, 4, 8)
same_rate = {k: validation_after_training(16 * k, small_rate) for k in factors}
scaled_rate = {
    k: same_rate[1] if k == 1 else validation_after_training(16 * k, small_rate * k)
    for k in factors
}
for k in factors:
    print(
        f"batch {16 * k:>3}: validation MSE {same_rate[k]:.4f} at rate {small_rate}, "
        f"{scaled_rate[k]:.4f} at rate {small_rate * k:g}"
    )

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
batches = [16 * k for k in factors]
ax.plot(
    batches,
    [same_rate[k] for k in factors],
    marker="o",
    label=f"rate {small_rate} at every batch",
)
ax.plot(
    batches,
    [scaled_rate[k] for k in factors],
    marker="s",
    label=f"rate {small_rate} x k (linear scaling)",
)
ax.axhline(
    same_rate[1], color="0.5", linestyle=":", label="batch 16 (what the rule promises)"
)
ax.set(
    xscale="log",
    xlabel="global batch: 16 x k (examples)",
    ylabel="validation MSE after 8 epochs",
    title="The linear scaling rule, from a small learning rate",
)
ax.set_xticks(batches, labels=[str(batch) for batch in batches])
ax.minorticks_off()
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Keeping the rate while the batch grows ends worse, with 4 and 8 times fewer steps (asserted).
# Scaling the rate wins back more than half of that loss at 4 times the batch (asserted); we assert
# only that factor, because how close the scaled run comes at 8 times varies with the seed. These
# are short runs from a deliberately small rate (a larger one would help at any batch size, and none
# of these runs reaches the persistence baseline): the experiment shows the rule's promise, not a
# good model. From a learning rate that is already as large as training tolerates, multiplying it by
# *k* can make training diverge; that is why Goyal et al. needed a warm-up, and they found a batch
# size beyond which the rule failed. Use it to choose where a learning-rate sweep starts.

# %%
assert same_rate[1] < same_rate[4] < same_rate[8], (
    "the same rate with fewer steps ends worse"
)
assert abs(scaled_rate[4] - same_rate[1]) < 0.5 * (same_rate[4] - same_rate[1]), (
    "scaling wins most of it back"
)

# %% [markdown]
# ### On a GPU: mixed precision
#
# On GPUs with tensor cores (and on TPUs) most of the speed comes from 16-bit arithmetic. Keras's
# `mixed_float16` policy computes in float16 and keeps the weights in float32; the last layer should
# output float32, and `compile` wraps the optimizer in a `LossScaleOptimizer`, which multiplies the
# loss before the gradients are computed so that small gradients do not vanish in float16. The cell
# runs only on a GPU (a CPU has no fast float16 arithmetic); on Colab, `TPUStrategy` plays the part
# of `MirroredStrategy` for a TPU's cores, with `bfloat16`, which needs no loss scaling. We make no
# claim about speed here: the book's models are too small for a GPU to be busy.

# %%
if gpu_available():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        # float32 out: a stable loss
        mixed = keras.Sequential(
            [
                keras.Input((None, len(FEATURES))),
                layers.LSTM(64),
                layers.Dense(1, dtype="float32"),
            ]
        )
        mixed.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        mixed_history = mixed.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
        assert (
            mixed.layers[0].compute_dtype == "float16"
            and mixed(x_test[:2]).dtype == "float32"
        )
        assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
        assert np.isfinite(mixed_history.history["loss"][-1])
        print(
            "mixed precision: LSTM computes in float16, weights in",
            mixed.layers[0].variable_dtype,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")

# %% [markdown]
# ## 6. Pitfalls
#
# - **A custom layer without `get_config` or registration.** It trains fine and fails when the model
#   is saved or loaded, often weeks later on another machine. Register it, write `get_config` with
#   plain Python values, and test the round trip (section 1's cell) in your test suite. Another
#   process loads it only if it imports the layer's code: keep custom layers in a module, not in a
#   notebook.
# - **Checkpoints without the optimizer or the data order.** Resuming from weights alone restarts
#   Adam's moments and the learning-rate schedule. `BackupAndRestore` and `tf.train.Checkpoint` save
#   the optimizer; the order of the data is yours to make a function of the epoch (section 4).
# - **Callbacks forget across a restart.** A resumed `fit` builds its callbacks afresh:
#   `ModelCheckpoint(save_best_only=True)` starts with no best value and overwrites the best file
#   with the first resumed epoch, however bad (pass `initial_value_threshold`), and `EarlyStopping`
#   and `ReduceLROnPlateau` start counting their patience again.
# - **A stateful layer that is never reset.** The state of one stream leaks into the next unless
#   `reset_state()` is called between them; and its batch size is fixed, one row per stream.
# - **A strategy created after the model.** Variables created outside `strategy.scope()` are not
#   mirrored; create the strategy first, and the model, its optimizer and metrics inside its scope.
# - **Per-replica and global batch.** Under a strategy, `fit`'s `batch_size` and our loop's
#   `global_batch` are the global batch; each replica gets its share, and a loss divided by the
#   per-replica batch size makes the gradients *N* times too large. Batches that do not split evenly
#   weigh examples unequally (section 5).
# - **Open ports.** TensorFlow's workers listen on every network interface of the machine, whatever
#   address `TF_CONFIG` gives them, and run any computation they are sent, without authentication:
#   for as long as they run, anyone who can reach the port can run code as you. Run them only on a
#   trusted network or behind a firewall, never on a machine that faces the internet.
# - **Processes left behind.** A worker that outlives its notebook keeps its port and its memory.
#   Start workers from code that stops them in a `finally`. A killed kernel runs no `finally`, so
#   ours also end with their parent: on Linux the operating system kills them (`PR_SET_PDEATHSIG`),
#   which works even while a worker is stuck in a C call; elsewhere a thread watches their standard
#   input. This suits a notebook only: under a cluster manager the manager owns the workers' lives,
#   and `run_workers` is not used.
# - **Determinism that is assumed, not switched on.** Equal weights after a restart need the same
#   operations in the same order and the same batches; on a GPU, `enable_op_determinism` gives the
#   first at a price (section 4), and the second is the data pipeline's job.

# %% [markdown]
# ## 7. Summary
#
# - A `.keras` file holds the architecture, weights and optimizer; custom layers need registration,
#   a `get_config` of plain values, and code that the loading process imports. The round trip gave
#   back the trained model's predictions exactly.
# - `ModelCheckpoint(save_best_only=True)` kept the best epoch; `BackupAndRestore` resumed a crashed
#   `fit` and ended with the weights of an uninterrupted run, helped by an order of batches that
#   Keras repeats in every epoch once a global seed is set.
# - A recurrent model serves a stream one step at a time, with a stateful layer or with its state
#   kept outside, and answers what the batch model answers; its memory per stream is constant. A
#   SavedModel with two signatures in raw units (whole windows, and one step with its state) served
#   the forecasts without our code.
# - `tf.data` cut the same windows as NumPy; prefetching read the next batch while the model
#   trained (counted), `tf.data` prefetched on its own, and op determinism switched it off.
# - `MirroredStrategy` on two logical CPUs and `MultiWorkerMirroredStrategy` on two processes (with a
#   custom loop, since Keras 3's `fit` fails there) gave the weights of one device with the same
#   global batch, when the batches split evenly; a failed worker restarted from its checkpoint ended
#   where the uninterrupted job did.
# - From a small learning rate, scaling it with the batch kept most of the small batch's result at 4
#   times the batch; the linear scaling rule tells where a learning-rate sweep starts.

# %% [markdown]
# ## 8. Exercises
#
# 1. **Memory per stream.** Write `stream_memory_bytes(kind, steps)` that returns the float32 bytes
#    one stream needs after `steps` steps: for `"gru"` our GRU(16)'s state, for `"transformer"` the
#    cache of the two-layer transformer of section 2.
# 2. **A layer that saves.** `ClipCorrection(limit)` below clips the correction to `[-limit, limit]`,
#    and its limit is a NumPy float. Make `SavingClip`, a subclass that saves and loads, so that the
#    check's round trip gives the same predictions.
# 3. **A new user joins.** With the three-stream stateful model of section 2, stream 1 gets a new
#    user: write `reset_stream(layer, row)` that zeroes that row of the GRU's state and keeps the
#    others, so that stream 1 then answers what a fresh model answers and streams 0 and 2 go on.


# %% tags=["solution"]
# Exercise 1: write your answer where the solution markers are.
### BEGIN SOLUTION
def stream_memory_bytes(kind, steps):
    floats = {
        "gru": gru_cell.units,
        "transformer": transformer_cache_floats(2, 64, steps),
    }[kind]
    return 4 * floats


### END SOLUTION

# %% tags=["check"]
assert stream_memory_bytes("gru", 1) == stream_memory_bytes("gru", 10_000) == 64
assert (
    stream_memory_bytes("transformer", 1) == 1024
    and stream_memory_bytes("transformer", 365) == 365 * 1024
)


# %%
class ClipCorrection(layers.Layer):
    def __init__(self, limit, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit

    def call(self, correction):
        return keras.ops.clip(correction, -self.limit, self.limit)


# %% tags=["solution"]
# Exercise 2: write your answer where the solution markers are.
### BEGIN SOLUTION
@keras.saving.register_keras_serializable(package="rnn_book_exercises")
class SavingClip(ClipCorrection):
    def get_config(self):
        return {**super().get_config(), "limit": float(self.limit)}


### END SOLUTION

# %% tags=["check"]
clipped = keras.Sequential(
    [
        keras.Input((None, len(FEATURES))),
        layers.GRU(4),
        layers.Dense(1),
        SavingClip(np.float32(0.5)),
    ]
)
clipped.save(work_dir / "clipped.keras")
reloaded_clip = keras.models.load_model(work_dir / "clipped.keras")
assert (
    isinstance(reloaded_clip.layers[-1], SavingClip)
    and reloaded_clip.layers[-1].limit == 0.5
)
assert np.array_equal(
    reloaded_clip.predict(x_test[:8], verbose=0), clipped.predict(x_test[:8], verbose=0)
)


# %% tags=["solution"]
# Exercise 3: write your answer where the solution markers are.
### BEGIN SOLUTION
def reset_stream(layer, row):
    for state in layer.states:
        values = keras.ops.convert_to_numpy(state)
        values[row] = 0.0
        state.assign(values)


### END SOLUTION

# %% tags=["check"]
stream_gru = streaming.layers[0]
stream_gru.reset_state()
for day in range(5):
    streaming(stream_days[:, day : day + 1])  # five days into all three streams
before = keras.ops.convert_to_numpy(stream_gru.states[0]).copy()
reset_stream(stream_gru, 1)
after = keras.ops.convert_to_numpy(stream_gru.states[0])
assert np.array_equal(after[[0, 2]], before[[0, 2]]) and not after[1].any(), (
    "only row 1 is zeroed"
)
new_user_answers = [
    streaming(stream_days[:, day : day + 1]).numpy()[1] for day in range(5, 8)
]
stream_gru.reset_state()
fresh_answers = [
    streaming(stream_days[:, day : day + 1]).numpy()[1] for day in range(5, 8)
]
assert np.allclose(new_user_answers, fresh_answers, atol=1e-6), "stream 1 starts afresh"

# %%
shutil.rmtree(work_dir)  # the chapter's files: models, checkpoints, the workers' job
