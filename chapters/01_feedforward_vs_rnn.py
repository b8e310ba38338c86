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
# # Chapter 1 — From feedforward networks to recurrent networks
#
# A [feedforward network](glossary.md#feedforward-network) reads its input all at once and forgets it. A
# [recurrent network](glossary.md#recurrent-neural-network) reads a sequence one step at a time and
# carries a *state* from each step to the next. This chapter shows, with experiments that can fail, why
# that state matters: a task that no order-blind model can solve, which a feedforward network on the
# whole window solves only at the length it was built for, and which a gated recurrent network (a
# [GRU](glossary.md#gated-recurrent-unit)) trained on 12 tokens still solves at 48 tokens when the two
# tokens that matter are far apart, where a [convolution](glossary.md#1d-convolution) that also reads
# any length fails; a recurrence written in ten lines of NumPy that reproduces Keras's `SimpleRNN` to
# float precision; and a first forecast of real weather.
#
# **You will learn to**
# - explain why order carries meaning, which models throw it away, and what a recurrent network can
#   do that a feedforward network on a fixed window cannot;
# - write the recurrence $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$ and draw it as a loop and
#   [unrolled](glossary.md#unrolling);
# - count a recurrent layer's parameters and see that they do not depend on the sequence length;
# - build one-to-one, [one-to-many](glossary.md#one-to-many), [many-to-one](glossary.md#many-to-one)
#   and [many-to-many](glossary.md#many-to-many) models in Keras;
# - forecast tomorrow's temperature and judge the model against the
#   [persistence baseline](glossary.md#persistence-baseline).
#
# **Prerequisites**: NumPy, a dense layer $y = xW + b$, training a Keras model with `fit`.
#
# **Run time**: a few minutes at most on a 2-core CPU (the README's table has the measured time). GPU:
# not measured.

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
import inspect
from collections import Counter

import keras
import matplotlib.pyplot as plt
import numpy as np

from utils.book import EpochLogger, setup_book
from utils.data import load_seattle_weather
from utils.diagrams import draw_rolled_and_unrolled, draw_sequence_diagram
from utils.generation import generate
from utils.plots import plot_learning_curves
from utils.tasks import (
    ORDER_LENGTH,
    ORDER_VOCABULARY,
    TOKEN_A,
    TOKEN_B,
    make_order_task,
)

seed = setup_book()
rng = np.random.default_rng(seed)

# %% [markdown]
# ## 1. Sequence data: order carries meaning
#
# Text, speech, prices and weather are *sequences*: the same elements in another order mean something
# else. "dog bites man" and "man bites dog" use the same three words; only the order tells us who is
# in trouble. A model that sees a sentence as a bag of words, or averages its word vectors, receives
# exactly the same input for both.

# %%
first, second = "dog bites man".split(), "man bites dog".split()
print("same words:", Counter(first) == Counter(second))
print("same sentence:", first == second)

# %% [markdown]
# A feedforward network maps one fixed-size input to one output. Fed one word at a time, it has no
# memory of the previous word; fed a bag or an average of the words, it has thrown the order away
# before it starts. Fed the whole sentence flattened into one long vector, it does see the order, with
# a separate weight for every position, but then it reads sentences of that one length only.
#
# ## 2. An experiment only order can decide
#
# We make the point with a task in which the label depends on order and on nothing else. Each
# sequence has 12 tokens: filler tokens 3–11 and exactly one token **A** (=1) and one token **B** (=2)
# at random positions. The label is 1 when A comes before B. Every test sequence comes with its
# *twin*, the same sequence with A and B swapped: the same bag of tokens, the opposite label.

# %%
vocab_size, seq_len = ORDER_VOCABULARY, ORDER_LENGTH
print(inspect.getsource(make_order_task))  # in utils/tasks.py: chapter 7 uses it too


def swap_a_and_b(tokens):
    swapped = tokens.copy()
    swapped[tokens == TOKEN_A], swapped[tokens == TOKEN_B] = TOKEN_B, TOKEN_A
    return swapped


x_train, y_train = make_order_task(4000, rng)
x_half, y_half = make_order_task(500, rng)
x_test = np.concatenate([x_half, swap_a_and_b(x_half)])
y_test = np.concatenate([y_half, 1 - y_half])
print(
    "train:",
    x_train.shape,
    " test:",
    x_test.shape,
    " share of label 1 in test:",
    y_test.mean(),
)
print(
    "example:",
    x_test[0],
    "label",
    int(y_test[0]),
    "| its twin:",
    x_test[500],
    "label",
    int(y_test[500]),
)

# %% [markdown]
# Three small models, each starting with an embedding of every token: `keras.layers.Embedding` is a
# trainable lookup table that replaces token number $k$ by row $k$ of a matrix, here a vector of 8
# numbers learned with the rest of the model. The **bag model** averages the
# embeddings over the sequence and classifies the average with a small dense network: a feedforward
# network on an order-free summary. The **window model** flattens the 12 embeddings into one vector of
# 96 numbers and classifies it with the same dense network: a feedforward network that sees every
# position, each through its own weights. The **recurrent model** reads the embeddings in order with a
# `SimpleRNN` of 16 units; its final state goes to the classifier. The bag and recurrent models are
# built with `None` as the length: they accept sequences of any length.


# %%
def order_classifier(name, body, seq_len=None):
    """Embedding -> body -> sigmoid, for token sequences of length seq_len
    (None: any length)."""
    return keras.Sequential(
        [
            keras.Input(shape=(seq_len,), dtype="int32"),
            keras.layers.Embedding(vocab_size, 8),
            *body,
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name=name,
    )


def build_bag_model():
    return order_classifier(
        "bag", [keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(16, "relu")]
    )


def build_window_model(seq_len=seq_len):
    return order_classifier(
        "window", [keras.layers.Flatten(), keras.layers.Dense(16, "relu")], seq_len
    )


def build_rnn_model(recurrent_layer=keras.layers.SimpleRNN):
    return order_classifier(recurrent_layer.__name__, [recurrent_layer(16)])


order_models = {
    "bag of embeddings": build_bag_model(),
    "window (flattened)": build_window_model(),
    "SimpleRNN": build_rnn_model(),
}
for name, model in order_models.items():
    print(f"{name:>18}: {model.count_params()} parameters")

# %% tags=["nbval-ignore-output"]
order_histories = {}
for name, model in order_models.items():
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    order_histories[name] = model.fit(
        x_train,
        y_train,
        validation_split=0.1,
        epochs=10,
        batch_size=64,
        verbose=0,
        callbacks=[EpochLogger(every=5, name=name)],
    )

# %% [markdown]
# Now the test: accuracy on the sequences and their twins, and, for the bag model, how far apart its
# predictions for a sequence and its twin are.

# %% tags=["nbval-ignore-output"]
order_accuracy = {
    name: model.evaluate(x_test, y_test, verbose=0)[1]
    for name, model in order_models.items()
}
bag_predictions = order_models["bag of embeddings"].predict(x_test, verbose=0)[:, 0]
twin_gap = np.abs(bag_predictions[:500] - bag_predictions[500:]).max()
for name, accuracy in order_accuracy.items():
    print(f"{name:>18}: test accuracy {accuracy:.3f}")
print(f"bag model, largest difference between a sequence and its twin: {twin_gap:.1e}")

# %%
assert order_accuracy["SimpleRNN"] >= 0.95, (
    "the recurrent model should solve the order task"
)
assert order_accuracy["window (flattened)"] >= 0.95, (
    "a feedforward network that sees the positions solves it too"
)
assert twin_gap < 1e-5, (
    "the bag model must give a sequence and its twin the same prediction"
)
# a consequence: each twin pair gets one right, one wrong
assert order_accuracy["bag of embeddings"] == 0.5, (
    "the bag model is exactly at chance on the order task"
)

# %% [markdown]
# The recurrent model and the window model are (nearly) always right; the bag model is exactly at
# chance, and not because it trained badly: it gives a sequence and its twin the same prediction, so on
# every pair it is right once and wrong once. No amount of data or training can fix that; only a model
# that sees the order can. The learning curves show the difference from the first epochs.

# %%
plot_learning_curves(
    order_histories, metric="accuracy", title="Order task: who comes first, A or B?"
)
plt.ylabel("accuracy (chance = 0.5)")
plt.show()

# %% [markdown]
# So a feedforward network can use order: at this one length it clears the same bar as the RNN. Where
# recurrence can win is **length**, and, more precisely, **distance**; to see why, we first need the
# recurrence itself (sections 3 and 4). Section 5 comes back to this task with longer sequences.
#
# ## 3. The recurrence
#
# A recurrent layer keeps a [hidden state](glossary.md#hidden-state) $h_t \in \mathbb{R}^{H}$. At each
# step it combines the new input $x_t \in \mathbb{R}^{D}$ with the previous state, through the *same*
# weights at every step (the "simple recurrent network" of Elman, 1990, here in today's form with
# $\tanh$, Keras's `SimpleRNN`; Elman's units were logistic):
#
# $$h_t = \tanh\left(x_t W_{xh} + h_{t-1} W_{hh} + b_h\right), \qquad h_0 = 0,$$
# $$y_t = h_t W_{hy} + b_y .$$
#
# **Notation, for the whole book.** Vectors are rows and weights multiply from the right, as in Keras:
# a batch is then a matrix with one row per sequence, and the same formula holds for one sequence or
# many. With $O$ outputs per step, $W_{xh}$ is $D \times H$, $W_{hh}$ is $H \times H$ and $W_{hy}$ is
# $H \times O$; the biases are rows, $b_h$ of $H$ numbers for the state and $b_y$ of $O$ for the output.
#
# The state is the network's memory: $h_t$ depends on $x_t$ directly and on $x_1,\dots,x_{t-1}$
# through $h_{t-1}$. The figure draws the same network twice. On the left, *rolled*: one cell whose
# state loops back into itself through $W_{hh}$; the black square on the loop is a delay of one
# [time step](glossary.md#time-step) (the state made at step $t-1$ is read at step $t$). On the right,
# the loop *unrolled*: one copy of the cell per step, starting from $h_0$, which makes it a feedforward
# network as deep as the sequence is long. Look at the labels on the arrows: every copy carries the
# same $W_{xh}$, $W_{hh}$ and $W_{hy}$, three matrices in all, not three per step. Every layer of the
# unrolled network [shares the same weights](glossary.md#weight-sharing).

# %%
draw_rolled_and_unrolled(plt.figure(figsize=(11, 3.8)).gca(), steps=4)
plt.show()

# %% [markdown]
# ### Weight sharing: the parameter count does not depend on the length
#
# Because every step uses the same $W_{xh}$, $W_{hh}$ and $b_h$, a `SimpleRNN` with $H$ units on
# $D$ features has $D \cdot H + H \cdot H + H$ parameters, whether it reads 10 steps or 1,000.
# A dense layer on the flattened sequence, by contrast, needs a weight for every (step, feature) pair.

# %%
num_features, hidden_size = 3, 16


def count_rnn_parameters(length):
    return keras.Sequential(
        [keras.Input((length, num_features)), keras.layers.SimpleRNN(hidden_size)]
    ).count_params()


def count_flat_dense_parameters(length):
    layers = [
        keras.Input((length, num_features)),
        keras.layers.Flatten(),
        keras.layers.Dense(hidden_size),
    ]
    return keras.Sequential(layers).count_params()


formula = num_features * hidden_size + hidden_size * hidden_size + hidden_size
for length in (10, 1000):
    print(
        f"length {length:>4}: SimpleRNN {count_rnn_parameters(length):>6}   "
        f"Dense on the flattened sequence {count_flat_dense_parameters(length):>6}"
    )
print("formula D*H + H*H + H =", formula)

# %%
assert count_rnn_parameters(10) == count_rnn_parameters(1000) == formula, (
    "the SimpleRNN has D*H + H*H + H parameters, at length 10 and at 1,000 alike"
)
assert count_flat_dense_parameters(1000) > 50 * count_flat_dense_parameters(10), (
    "a dense layer on the flattened sequence needs over 50 times more weights at 1,000"
    " steps than at 10"
)

# %% [markdown]
# The recurrent layer can even be built with `None` as the length and then read sequences of any
# length; the dense layer cannot.
#
# ## 4. The recurrence from scratch, checked against Keras
#
# The forward pass is a loop over time. Keras stores exactly the matrices of the equations above:
# `kernel` is $W_{xh}$ ($D \times H$), `recurrent_kernel` is $W_{hh}$ ($H \times H$) and `bias` is $b_h$.
# We write the loop in NumPy, in float64.


# %%
def simple_rnn_forward(inputs, kernel, recurrent_kernel, bias):
    """Run the recurrence over inputs of shape (batch, time, features); return all
    states (batch, time, units)."""
    batch_size, num_steps, _ = inputs.shape
    state = np.zeros((batch_size, recurrent_kernel.shape[0]))
    states = []
    for t in range(num_steps):
        state = np.tanh(inputs[:, t] @ kernel + state @ recurrent_kernel + bias)
        states.append(state)
    return np.stack(states, axis=1)


# %% [markdown]
# A Keras `SimpleRNN` with random weights, asked for every state (`return_sequences=True`) and the last
# one (`return_state=True`), and a `Dense` readout applied at every step ($y_t = h_t W_{hy} + b_y$: its
# `kernel` is $W_{hy}$, its `bias` is $b_y$). Keras starts both biases at zero, which would let a loop
# that forgets a bias pass the check, so we set them to random values first.

# %%
inputs = keras.Input(shape=(None, num_features))
keras_states, keras_last_state = keras.layers.SimpleRNN(
    hidden_size, return_sequences=True, return_state=True
)(inputs)
keras_outputs = keras.layers.Dense(2)(keras_states)
rnn_check_model = keras.Model(inputs, [keras_states, keras_last_state, keras_outputs])

sequences = rng.normal(size=(4, 7, num_features)).astype("float32")
kernel, recurrent_kernel, bias, readout_kernel, readout_bias = (
    rnn_check_model.get_weights()
)
# not zeros
bias, readout_bias = (
    rng.normal(size=b.shape).astype("float32") for b in (bias, readout_bias)
)
rnn_check_model.set_weights(
    [kernel, recurrent_kernel, bias, readout_kernel, readout_bias]
)
states_keras, last_state_keras, outputs_keras = rnn_check_model(sequences)
print(
    "kernel",
    kernel.shape,
    "recurrent_kernel",
    recurrent_kernel.shape,
    "bias",
    bias.shape,
)

# %%
states_numpy = simple_rnn_forward(
    sequences.astype("float64"), kernel, recurrent_kernel, bias
)
outputs_numpy = states_numpy @ readout_kernel + readout_bias
print(
    "all states agree:", np.allclose(states_numpy, states_keras, rtol=1e-5, atol=1e-6)
)
print(
    "last state agrees:",
    np.allclose(states_numpy[:, -1], last_state_keras, rtol=1e-5, atol=1e-6),
)
print(
    "outputs y_t agree:",
    np.allclose(outputs_numpy, outputs_keras, rtol=1e-5, atol=1e-6),
)
assert np.allclose(states_numpy, states_keras, rtol=1e-5, atol=1e-6), (
    "the NumPy loop matches Keras's states at every step, within float32 rounding"
)
assert np.allclose(states_numpy[:, -1], last_state_keras, rtol=1e-5, atol=1e-6), (
    "the loop's last state matches Keras's final state, within float32 rounding"
)
assert np.allclose(outputs_numpy, outputs_keras, rtol=1e-5, atol=1e-6), (
    "the outputs y_t = h_t W_hy + b_y match Keras's at every step, within float32"
    " rounding"
)

# %% [markdown]
# Ten lines of NumPy are the whole `SimpleRNN`: same states at every step, same final state, same
# outputs, within float32 rounding. The same weights serve sequences of any length, so the check also
# holds for a sequence of 50 steps:

# %%
long_sequences = rng.normal(size=(2, 50, num_features)).astype("float32")
long_states_keras = rnn_check_model(long_sequences)[0]
long_states_numpy = simple_rnn_forward(
    long_sequences.astype("float64"), kernel, recurrent_kernel, bias
)
print(
    "50 steps agree:",
    np.allclose(long_states_numpy, long_states_keras, rtol=1e-5, atol=1e-6),
)
assert np.allclose(long_states_numpy, long_states_keras, rtol=1e-5, atol=1e-6), (
    "on a sequence of 50 steps the same weights still match Keras's states"
)

# %% [markdown]
# **A precision trap on GPUs.** On NVIDIA GPUs from the Ampere generation on (A100, L4, H100, and the
# A100 and L4 of Colab), TensorFlow by default runs float32 matrix products in
# [TensorFloat-32](https://www.tensorflow.org/api_docs/python/tf/config/experimental/enable_tensor_float_32_execution):
# their inputs keep 10 of float32's 23 mantissa bits, a relative error of about $5 \times 10^{-4}$.
# It is faster, and TensorFlow's documentation says it should not hurt training in practice, but it
# would fail the checks above at $10^{-5}$, so the setup cell's `setup_book()` turns it off with
# `tf.config.experimental.enable_tensor_float_32_execution(False)` (its printed line says "TF32 off").
# When two implementations disagree by about $10^{-3}$ on a GPU and agree on the CPU, think of TF32 first.
#
# ## 5. Same weights, any length
#
# Back to the order task of section 2. The window model has a weight for each of the 12 positions: a
# sequence of 48 tokens does not fit its first dense layer, and if we cut it to a window of 12, it
# cannot see an A or a B outside that window. A recurrent layer applies the same weights at every step,
# so it reads 48 tokens as easily as 12. Whether it has learned a rule that still holds at 48 is
# another question. We test it on sequences 4 and 8 times longer than any it was trained on, in two
# controlled sets per length. **Early**: A and B both within the first 12 tokens, as in training,
# followed by a long run of fillers the answer must be held across. **Late**: A and B both within the
# last 12 tokens, followed by at most 10 fillers as in training, but after a long run of fillers that
# no training sequence had. A recurrent layer does not see positions, only its state; what is new in
# each set is a long run of fillers, after the markers or before them.

# %%
long_lengths = (48, 96)
long_test_sets = {
    (length, where): make_order_task(1000, rng, seq_len=length, region=region)
    for length in long_lengths
    for where, region in (("early", (0, seq_len)), ("late", (length - seq_len, length)))
}
example_tokens = long_test_sets[48, "late"][0][0]
print(
    "a late sequence of 48 tokens: A at",
    np.argmax(example_tokens == TOKEN_A),
    "and B at",
    np.argmax(example_tokens == TOKEN_B),
)

# %%
try:
    order_models["window (flattened)"].predict(
        long_test_sets[48, "early"][0], verbose=0
    )
    window_error = None
except ValueError as error:
    window_error = error
print("the window model refuses 48 tokens with a ValueError:", window_error is not None)
assert window_error is not None, (
    "the window model refuses a sequence of 48 tokens with a ValueError"
)

# %% [markdown]
# The `SimpleRNN` of section 2 reads the longer sequences. We add one more recurrent model: a `GRU`, a
# recurrent layer whose state update has a learned gate that lets it keep its state unchanged (chapter 3
# opens it up), trained exactly like the others on length 12. Each is scored on the four test sets. The
# two differ in more than the gate: with 16 units each, the GRU has 1,361 parameters and the `SimpleRNN`
# 513.

# %% tags=["nbval-ignore-output"]
gru_order_model = build_rnn_model(keras.layers.GRU)
gru_order_model.compile(
    optimizer=keras.optimizers.Adam(1e-2),
    loss="binary_crossentropy",
    metrics=["accuracy"],
)
gru_order_model.fit(
    x_train,
    y_train,
    validation_split=0.1,
    epochs=10,
    batch_size=64,
    verbose=0,
    callbacks=[EpochLogger(every=5, name="GRU")],
)
long_accuracy = {}
for name, model in (("SimpleRNN", order_models["SimpleRNN"]), ("GRU", gru_order_model)):
    for (length, where), (tokens, labels) in long_test_sets.items():
        long_accuracy[name, length, where] = model.evaluate(tokens, labels, verbose=0)[
            1
        ]
    print(
        f"{name:>9} trained on 12 tokens, accuracy early | late: "
        + ", ".join(
            f"{length} tokens {long_accuracy[name, length, 'early']:.3f} |"
            f" {long_accuracy[name, length, 'late']:.3f}"
            for length in long_lengths
        )
    )

# %%
assert min(long_accuracy["GRU", length, "late"] for length in long_lengths) >= 0.9, (
    "the GRU's rule holds after a lead-in of fillers it never saw in training"
)

# %% [markdown]
# The GRU is right on nine sequences in ten or more when the markers come after a long lead-in of
# fillers, at 48 and at 96 tokens (asserted): its state after 36 or 84 fillers, a run no training
# sequence had, still lets it apply the rule "remember whether A came first". Holding the answer over a
# long run of fillers is harder: over about 40 fillers, four times what it was trained on, it usually
# succeeds; over 80-odd, eight times, it fails on some seeds (the early sets above; whether the printed
# run is one of them depends on `BOOK_SEED`). The `SimpleRNN` fails
# somewhere on most seeds, on the long holds for some and after the long lead-ins for others: shared
# weights do not give the same *state* after a run of fillers it never saw, and nothing made it learn to
# keep that state from drifting. On some seeds it scores far *below* chance on a set: that is not
# forgetting (forgetting gives one half) but a state that still separates the two answers, moved to
# where the readout reads it backwards. Chapter 2 shows what many steps do to a `SimpleRNN`'s gradients,
# and chapter 3 what the GRU's gate changes. The window model, whatever its accuracy at 12 tokens,
# cannot be asked.
#
# **Is reading any length what recurrence buys?** Not by itself. A feedforward network whose weights are
# shared over positions reads any length too: a 1-D convolution slides one filter of 12 tokens along the
# sequence, and a global max pool keeps its strongest response, wherever it was. In all four sets above,
# A and B are within 12 tokens of each other, so one filter position sees both. The set that separates
# the two kinds of model puts them **apart**, 13 to 23 tokens from each other in 48, so that no filter
# position sees both; and at least 12 tokens from either end, so that no filter sees a marker next to
# the zero padding at an edge (which would tell it where the marker is). The convolution below has the
# window model's parameter count and is trained exactly like the others on 12 tokens.


# %%
def make_apart_task(num_sequences, rng, length=48):
    """Sequences of `length` tokens with A and B more than seq_len apart and at least
    seq_len from either end: one at positions seq_len to seq_len + 5, the other 6 to 1
    positions before the last seq_len, in random order; label 1 when A comes first."""
    tokens = rng.integers(3, vocab_size, size=(num_sequences, length))
    a_first = rng.random(num_sequences) < 0.5
    early = rng.integers(seq_len, seq_len + 6, num_sequences)
    late = rng.integers(length - seq_len - 6, length - seq_len, num_sequences)
    rows = np.arange(num_sequences)
    tokens[rows, np.where(a_first, early, late)] = TOKEN_A
    tokens[rows, np.where(a_first, late, early)] = TOKEN_B
    return tokens, a_first.astype("float32")


conv_order_model = order_classifier(
    "convolution",
    [
        keras.layers.Conv1D(16, seq_len, padding="same", activation="relu"),
        keras.layers.GlobalMaxPooling1D(),
    ],
)
print(
    f"convolution: {conv_order_model.count_params()} parameters "
    f"(window model: {order_models['window (flattened)'].count_params()})"
)

# %% tags=["nbval-ignore-output"]
conv_order_model.compile(
    optimizer=keras.optimizers.Adam(1e-2),
    loss="binary_crossentropy",
    metrics=["accuracy"],
)
conv_order_model.fit(
    x_train,
    y_train,
    validation_split=0.1,
    epochs=10,
    batch_size=64,
    verbose=0,
    callbacks=[EpochLogger(every=5, name="convolution")],
)
for (length, where), (tokens, labels) in long_test_sets.items():
    long_accuracy["convolution", length, where] = conv_order_model.evaluate(
        tokens, labels, verbose=0
    )[1]
x_apart, y_apart = make_apart_task(1000, rng)
for name, model in (
    ("SimpleRNN", order_models["SimpleRNN"]),
    ("GRU", gru_order_model),
    ("convolution", conv_order_model),
):
    long_accuracy[name, 48, "apart"] = model.evaluate(x_apart, y_apart, verbose=0)[1]
for name in ("SimpleRNN", "GRU", "convolution"):
    print(
        f"{name:>11}: "
        + ", ".join(
            f"{length} {where} {long_accuracy[name, length, where]:.3f}"
            for length, where in (*long_test_sets, (48, "apart"))
        )
    )

# %%
assert (
    min(long_accuracy["convolution", length, where] for length, where in long_test_sets)
    >= 0.95
), "with A and B within one filter, the convolution reads any length"
assert long_accuracy["convolution", 48, "apart"] < 0.6, (
    "no filter position sees both A and B"
)
assert long_accuracy["GRU", 48, "apart"] >= 0.9, (
    "the GRU's state carries A or B across the gap"
)

# %% [markdown]
# The convolution is right on 95% or more of all four sets, at 48 and 96 tokens (asserted): weight
# sharing gives it any length, as it gives an RNN. On the apart set it stays near chance (below 60%,
# asserted), while the GRU stays at 90% or more. What a gated recurrence adds is a **state** that
# relates tokens farther apart than any fixed window, at a distance no one chose in advance. The
# `SimpleRNN`, recurrent too, scores anywhere from 0 to 1 on the apart set depending on the seed: its
# state may carry the order across the gap and still be read the wrong way round (chapter 2 shows why
# a long gap is hard for it).
#
# ## 6. Input and output shapes
#
# Keras recurrent layers read tensors of shape `(batch, time, features)`. What comes out depends on
# the task; the classic patterns (Karpathy's "unreasonable effectiveness" post made the
# pictures famous) come in the variants below. The figure draws what the code after it computes.

# %%
patterns = [
    (1, [0], [0], "one-to-one\n(Dense net)", {}),
    (4, range(4), range(4), "one-to-many\n(the same x at every step)", {}),
    (
        4,
        [0],
        range(4),
        "one-to-many, autoregressive\n(output → next input)",
        {"feedback": True},
    ),
    (4, range(4), [3], "many-to-one\n(sentence → sentiment)", {}),
    (4, range(4), range(4), "many-to-many\n(tag every word)", {}),
    (
        6,
        range(3),
        range(3, 6),
        "encoder-decoder\n(c: the encoder's last state)",
        {"decoder_start": 3},
    ),
]
fig, axes = plt.subplots(
    1, 6, figsize=(18, 3.0), gridspec_kw={"width_ratios": [2, 4, 4, 4, 4, 6]}
)
for ax, (num_steps, input_steps, output_steps, title, options) in zip(
    axes, patterns, strict=True
):
    draw_sequence_diagram(ax, num_steps, input_steps, output_steps, title, **options)
fig.suptitle(
    "Sequence patterns: inputs (green), recurrent states (blue), outputs (orange),"
    " outputs fed back\nas inputs (red), the encoder's summary c (purple)",
    fontweight="bold",
)
plt.show()

# %% [markdown]
# Each pattern in Keras, with 10 input steps of 3 features, 16 units and 2 outputs per step. The
# switches are `return_sequences` (one output per step, or only the last), `RepeatVector` (feed one
# vector at every step of a decoder) and a `Dense` layer, which on a 3-D tensor acts on every step
# independently, as `TimeDistributed(Dense(...))` would.

# %%
layers = keras.layers
steps_in, steps_out, units, outputs_per_step = 10, 5, 16, 2
shape_models = {
    "one-to-one": [
        keras.Input((num_features,)),
        layers.Dense(units, "relu"),
        layers.Dense(outputs_per_step),
    ],
    "one-to-many (repeated)": [
        keras.Input((num_features,)),
        layers.RepeatVector(steps_out),
        layers.SimpleRNN(units, return_sequences=True),
        layers.Dense(outputs_per_step),
    ],
    "many-to-one": [
        keras.Input((steps_in, num_features)),
        layers.SimpleRNN(units),
        layers.Dense(outputs_per_step),
    ],
    "many-to-many (synchronous)": [
        keras.Input((steps_in, num_features)),
        layers.SimpleRNN(units, return_sequences=True),
        layers.Dense(outputs_per_step),
    ],
    "encoder-decoder": [
        keras.Input((steps_in, num_features)),
        layers.SimpleRNN(units),
        layers.RepeatVector(steps_out),
        layers.SimpleRNN(units, return_sequences=True),
        layers.TimeDistributed(layers.Dense(outputs_per_step)),
    ],
}
for name, stack in shape_models.items():
    model = keras.Sequential(stack)
    print(
        f"{name:>27}: {str(model.input_shape):>16} -> {str(model.output_shape):<16}"
        f" {model.count_params():>4} params"
    )

# %% [markdown]
# The encoder reads 10 steps and keeps only its final state; `RepeatVector` hands that state to the
# decoder as its input at each of its 5 steps (the boxes "c" in the figure; the decoder's own state
# starts from zero), so input and output lengths are independent. Another common wiring passes $c$ as
# the decoder's initial state instead (chapter 5 does). (Chapter 5 shows why squeezing a whole input
# into one vector is a bottleneck, and how attention removes it.)
#
# The **autoregressive** one-to-many cannot be a single layer call: each step needs the previous
# step's output, which does not exist until that step has run. It is a loop around a *one-step* model
# that maps $(x_t, h_{t-1})$ to $(y_t, h_t)$, with outputs the size of the inputs, so that $y_t$ can
# be fed back as $x_{t+1}$. `utils.generation.generate` is that loop; chapter 3 uses it to write text
# one character at a time.

# %%
step_rnn, step_readout = (
    layers.SimpleRNN(units, return_state=True),
    layers.Dense(num_features),
)
step_input, previous_state = keras.Input((num_features,)), keras.Input((units,))
_, next_state = step_rnn(
    layers.Reshape((1, num_features))(step_input), initial_state=previous_state
)
one_step_model = keras.Model(
    [step_input, previous_state], [step_readout(next_state), next_state]
)


def rnn_step(x, state):
    output, state = one_step_model([x, state])
    return output, state


first_input, zero_state = sequences[:, 0], np.zeros((len(sequences), units), "float32")
generated, _ = generate(rnn_step, first_input, zero_state, num_steps=6)
print(
    "one input of shape",
    first_input.shape,
    "-> 6 outputs, stacked:",
    np.stack(generated, axis=1).shape,
)

# %% [markdown]
# The loop is exactly the recurrence of section 4 run on its own outputs: our NumPy
# `simple_rnn_forward`, given the inputs $x_1, y_1, \dots, y_5$ in one pass, reproduces every generated
# output.

# %%
# x_1, then y_1 ... y_5
fed_back = np.stack([first_input, *generated[:-1]], axis=1).astype("float64")
readout_kernel_step, readout_bias_step = step_readout.get_weights()
replayed = (
    simple_rnn_forward(fed_back, *step_rnn.get_weights()) @ readout_kernel_step
    + readout_bias_step
)
print(
    "loop == one pass over its own outputs:",
    np.allclose(np.stack(generated, axis=1), replayed, atol=1e-5),
)
assert np.allclose(np.stack(generated, axis=1), replayed, atol=1e-5), (
    "the NumPy recurrence fed x_1, y_1 ... y_5 in one pass reproduces every generated"
    " output"
)

# %% [markdown]
# ## 7. A first real forecast: tomorrow's temperature in Seattle
#
# Real data: daily weather records of Seattle, 2012–2015 (NOAA, vendored in `data/`). We forecast
# tomorrow's **mean temperature** (the average of the day's high and low, in °C) from the last 7 days.
# The splits are by year: train on 2012–2013, stop training on 2014, test once on 2015.

# %%
weather = load_seattle_weather("all")
dates = weather["date"]
years = dates.astype("datetime64[Y]").astype(int) + 1970
mean_temperature = (weather["temp_max"] + weather["temp_min"]) / 2
print("days:", len(dates), " first:", dates[0], " last:", dates[-1])
print("columns:", [name for name in weather if name != "date"])

# %% [markdown]
# Any forecast must beat the simplest one: **persistence**, "tomorrow will be like today". We give
# the networks the four measured variables, standardised with the *training* years' statistics only,
# plus the day of the year as a point on a circle (sine and cosine), so that 31 December and 1 January
# are neighbours.

# %%
measurements = np.stack(
    [
        weather["temp_max"],
        weather["temp_min"],
        weather["precipitation"],
        weather["wind"],
    ],
    axis=1,
)
is_train_year = years <= 2013
train_measurements = measurements[is_train_year]
standardised = (measurements - train_measurements.mean(0)) / train_measurements.std(0)


def season_features(dates):
    """The day of the year as a point on a circle: sine and cosine of its angle, one row
    per date."""
    angle = 2 * np.pi * (dates - dates.astype("datetime64[Y]")).astype(int) / 365.25
    return np.column_stack([np.sin(angle), np.cos(angle)])


features = np.column_stack([standardised, season_features(dates)]).astype("float32")

# %% [markdown]
# A window holds seven days of these features; its target is the mean temperature `horizon` days
# after its last day, and the year of that target day decides the split: training up to 2013,
# validation 2014, test 2015.

# %%
window = 7


def make_forecast_windows(horizon):
    """Windows of `window` days of features; the target is the mean temperature
    `horizon` days after the window's last day ("today"). Returns windows, targets,
    today's temperature, the target dates and the split of each window by the year of
    its target date."""
    last_days = np.arange(window - 1, len(dates) - horizon)
    windows = np.stack([features[day - window + 1 : day + 1] for day in last_days])
    target_years = years[last_days + horizon]
    split_of = {
        "train": target_years <= 2013,
        "valid": target_years == 2014,
        "test": target_years == 2015,
    }
    targets, today = mean_temperature[last_days + horizon], mean_temperature[last_days]
    return windows, targets, today, dates[last_days + horizon], split_of


windows, targets, persistence, target_dates, split_of = make_forecast_windows(horizon=1)
print(
    "windows:",
    windows.shape,
    {name: int(mask.sum()) for name, mask in split_of.items()},
)

# %% [markdown]
# The networks predict the *change* from today, scaled to unit size, and are trained on the mean
# absolute error (MAE), the metric we report. Predicting the change means that a network that
# outputs zero is exactly the persistence forecast: it can only win by learning something.
# The model is a `SimpleRNN` of 8 units reading the 7-day window, and a `Dense` output. With 724
# training days, one training run depends visibly on its random start, so we train three from
# different initialisations and average their forecasts: a small *ensemble*. (The error of an average
# forecast is never larger than the average of the runs' errors: $|\bar f - y| \le \frac{1}{3}\sum_r
# |f_r - y|$ on every day.)

# %%
change = targets - persistence
change_scale = change[split_of["train"]].std()


def build_forecaster():
    inputs = keras.Input((window, features.shape[1]))
    return keras.Sequential(
        [inputs, keras.layers.SimpleRNN(8), keras.layers.Dense(1)], name="SimpleRNN"
    )


forecasters = [build_forecaster() for _ in range(3)]
print(
    f"SimpleRNN forecaster: {forecasters[0].count_params()} parameters,"
    f" {len(forecasters)} runs"
)


# %% tags=["nbval-ignore-output"]
def fit_forecaster(model, windows, scaled_change, split_of):
    """Train on the train split with early stopping on the valid split; return the
    History."""
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mae")
    return model.fit(
        windows[split_of["train"]],
        scaled_change[split_of["train"]],
        validation_data=(windows[split_of["valid"]], scaled_change[split_of["valid"]]),
        epochs=100,
        batch_size=32,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True),
            EpochLogger(20, model.name),
        ],
    )


forecast_histories = [
    fit_forecaster(model, windows, change / change_scale, split_of)
    for model in forecasters
]

# %% tags=["nbval-ignore-output"]
test_days = split_of["test"]
observed = targets[test_days]
run_forecasts = [
    persistence[test_days]
    + change_scale * model.predict(windows[test_days], verbose=0)[:, 0]
    for model in forecasters
]
test_forecasts = {
    "persistence": persistence[test_days],
    "SimpleRNN": np.mean(run_forecasts, axis=0),
}
test_errors = {
    name: np.abs(forecast - observed) for name, forecast in test_forecasts.items()
}
test_mae = {name: float(errors.mean()) for name, errors in test_errors.items()}
print(f"persistence: test MAE {test_mae['persistence']:.3f} °C")
print(
    f"  SimpleRNN: test MAE {test_mae['SimpleRNN']:.3f} °C, the average of 3 runs with"
    " MAE "
    + ", ".join(
        f"{np.abs(forecast - observed).mean():.3f}" for forecast in run_forecasts
    )
)

# %% [markdown]
# A difference of two means over 365 days hides that both forecasts face the same weather: some days
# are easy for both, others hard for both. A **paired** comparison looks at each day's gain, the
# persistence error minus the RNN's error on that day. Its mean is the difference of the two MAEs,
# and its *standard error* (the spread of the daily gains divided by $\sqrt{365}$) says how much that
# mean would move with another year of similar days. A gain of more than two standard errors is
# unlikely to be luck. Dividing by $\sqrt{365}$ treats the days as independent; temperatures are not,
# but the daily *gains* nearly are: the correlation between one day's gain and the next is printed
# too.

# %% tags=["nbval-ignore-output"]
daily_gain = test_errors["persistence"] - test_errors["SimpleRNN"]
standard_error = daily_gain.std(ddof=1) / np.sqrt(len(daily_gain))
print(
    f"RNN gain over persistence per test day: mean {daily_gain.mean():.3f} °C, standard"
    f" error {standard_error:.3f} °C ({daily_gain.mean() / standard_error:.1f} standard"
    " errors)"
)
print(
    f"days on which the RNN is closer: {np.mean(daily_gain > 0):.0%}, persistence:"
    f" {np.mean(daily_gain < 0):.0%}"
)
next_day_correlation = np.corrcoef(daily_gain[:-1], daily_gain[1:])[0, 1]
print(f"correlation between one day's gain and the next: {next_day_correlation:.2f}")

# %%
assert 1.4 < test_mae["persistence"] < 1.7, (
    "persistence is off by about 1.5 °C a day in 2015"
)
assert test_mae["SimpleRNN"] < test_mae["persistence"], (
    "the RNNs' average forecast must beat 'tomorrow = today'"
)
assert daily_gain.mean() > 2 * standard_error, (
    "... by more than two standard errors of the daily gains"
)
assert abs(next_day_correlation) < 0.2, (
    "the standard error assumes nearly independent daily gains"
)
assert np.mean(daily_gain < 0) > 0.3, (
    "a modest gain: persistence is still closer on many days"
)

# %% [markdown]
# Persistence is the simplest baseline, not the only one. Two more need no training at all, only a
# least-squares fit: **climatology**, the seasonal average (a constant plus a sine and a cosine of the
# target's day of the year), and a **linear regression** of tomorrow's change on today's six numbers.
# Both are fitted on 2012–2014: the RNNs saw 2014 too, for early stopping, and a fit with nothing to
# tune can use it as training data. The same paired comparison tells whether the RNNs beat the
# regression.


# %% tags=["nbval-ignore-output"]
def least_squares_forecast(train_inputs, train_targets, test_inputs):
    """Fit targets ≈ inputs @ w + b by least squares on the training rows; predict the
    test rows."""
    coefficients, *_ = np.linalg.lstsq(
        np.column_stack([train_inputs, np.ones(len(train_inputs))]),
        train_targets,
        rcond=None,
    )
    return np.column_stack([test_inputs, np.ones(len(test_inputs))]) @ coefficients


fit_days = split_of["train"] | split_of["valid"]
season = season_features(target_dates)
today_features = windows[:, -1]  # the six numbers of the window's last day
test_forecasts["climatology"] = least_squares_forecast(
    season[fit_days], targets[fit_days], season[test_days]
)
test_forecasts["linear, today"] = persistence[test_days] + least_squares_forecast(
    today_features[fit_days], change[fit_days], today_features[test_days]
)
for name in ("climatology", "linear, today"):
    test_errors[name] = np.abs(test_forecasts[name] - observed)
    test_mae[name] = float(test_errors[name].mean())
gain_over_linear = test_errors["linear, today"] - test_errors["SimpleRNN"]
linear_standard_error = gain_over_linear.std(ddof=1) / np.sqrt(len(gain_over_linear))
for name in ("climatology", "persistence", "linear, today", "SimpleRNN"):
    print(f"{name:>13}: test MAE {test_mae[name]:.3f} °C")
print(
    f"RNN gain over the linear regression per day: mean {gain_over_linear.mean():.3f}"
    f" °C ({gain_over_linear.mean() / linear_standard_error:+.1f} standard errors)"
)
assert test_mae["climatology"] > test_mae["persistence"] + 0.5, (
    "the season alone is a weak forecast"
)
assert test_mae["linear, today"] < test_mae["persistence"], (
    "a linear model on today beats persistence too"
)
assert gain_over_linear.mean() < linear_standard_error, (
    "the RNNs are no better than the regression"
)

# %% [markdown]
# The recurrent networks' average forecast beats persistence on the held-out year by more than two
# standard errors of the daily gains, so not by luck of the days; but the margin is modest, and on
# three days in ten or more persistence is the closer of the two. The ladder of baselines puts that
# gain in its place. The seasonal average alone is far worse than persistence: in this maritime
# climate most of tomorrow is today. And a linear regression on today's six numbers is no worse than
# the RNNs: their paired gain over it is below one standard error (printed above; on some seeds the
# regression is ahead by more than one standard error), and three days ahead, in exercise 4, the RNN
# is not two standard errors ahead of it either (asserted there). The RNNs differ from it in several
# ways at once, a week of history, a nonlinearity, another loss, early stopping; together they earn
# nothing we can measure on this year, and weather systems arriving from the Pacific are not in these
# four columns. A network has to beat the strongest cheap baseline, not the weakest; chapter 8
# compares many kinds of forecaster on this data. The first quarter of 2015:

# %%
quarter = slice(0, 90)
test_dates = target_dates[test_days]
plt.figure(figsize=(9, 3.8))
plt.plot(test_dates[quarter], targets[test_days][quarter], "k-", label="observed")
plt.plot(
    test_dates[quarter],
    test_forecasts["persistence"][quarter],
    ":",
    color="0.5",
    label="persistence",
)
plt.plot(
    test_dates[quarter],
    test_forecasts["SimpleRNN"][quarter],
    "C0-",
    label="SimpleRNN forecast (3 runs averaged)",
)
plt.title("Next-day mean temperature, Seattle, January–March 2015 (test year)")
plt.xlabel("date")
plt.ylabel("mean temperature (°C)")
plt.legend()
plt.show()

# %% [markdown]
# Persistence is the observed curve shifted right by one day. Look for the days after a sudden warm
# or cold spell: that is where a forecast can differ from persistence, for better or worse.
#
# ## 8. Pitfalls
#
# - **Shapes.** Recurrent layers expect `(batch, time, features)`. A univariate series of shape
#   `(batch, time)` needs a trailing axis: `x[..., None]`.
# - **Stacking recurrent layers** needs `return_sequences=True` on every layer but the last;
#   otherwise the next layer receives a 2-D tensor and fails.
# - **Leakage in time series.** Standardise with the training period's statistics, split by time
#   (never shuffle days across splits), and let each window end before its target day.
# - **No baseline, no claim.** Compare a forecaster with persistence, the seasonal average and a linear model;
#   an MAE of 1.5 °C means nothing until we know persistence makes about 1.5 °C too.
# - **An order-blind summary.** Averaging or pooling the raw embeddings (a bag of words) silently
#   discards order: when the label depends on order alone, as in section 2, the model stays at chance
#   however long it trains. Pooling *after* a layer that sees the order keeps what that layer has
#   turned into features: local patterns for a convolution, the whole past for a recurrent layer,
#   absolute positions for a per-token layer on embeddings with positions (exercise 1).

# %% [markdown]
# ## 9. Summary
#
# - In sequence data the order carries meaning; a model that averages or bags the sequence cannot see
#   it (the bag model was exactly at chance on the order task).
# - A feedforward network on the flattened window does see the order, but only at the one length its
#   weights were built for. A recurrent layer reads any length, and so does a convolution (weights
#   shared over positions); what a gated recurrent state adds is reach: a GRU trained on 12 tokens related
#   A and B 13 to 23 tokens apart in 48, which no filter of 12 tokens sees at once. Holding the
#   answer over many more steps than in training is harder, for the GRU too.
# - An RNN carries a state: $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$ (row vectors, as in Keras),
#   with the same weights at every step (the loop, unrolled, has one $W_{xh}$, $W_{hh}$ and $W_{hy}$),
#   so its parameter count does not depend on the sequence length.
# - The whole forward pass is a short loop; ours matched `keras.layers.SimpleRNN` to float32 rounding.
# - `return_sequences`, `RepeatVector` and per-step `Dense` give one-to-many, many-to-one and
#   many-to-many models; the autoregressive one-to-many is a loop that feeds each output back.
# - On real weather, the average forecast of three small RNNs beat the persistence forecast on a
#   held-out year by a modest margin, more than two standard errors of the paired daily gains, but not
#   a linear regression on today's weather: judge a model by the strongest baseline.

# %% [markdown]
# ## 10. Exercises
#
# 1. **Give the bag a position.** The bag model of section 2 was at exactly 0.5. Explain why that was
#    certain before it trained (think of the twins). Then give it what it lacks: add a learned
#    *position embedding*, `keras.layers.Embedding(seq_len, 8)` of the positions 0 to 11, to each
#    token's embedding, keep the average over the sequence (one `GlobalAveragePooling1D`, whose result
#    alone feeds the output), and make the model, called
#    `positional_bag`, reach a test accuracy of at least 0.9 on the order task of section 2.
#    (Averaging a sum of two embeddings gives the sum of their averages: what must happen to each
#    token's vector before the average?)
# 2. **An LSTM carries two states.** A [`keras.layers.LSTM`](glossary.md#long-short-term-memory)
#    (chapter 3) passes two vectors from step to step: its output $h$ and a *cell state* $c$; with
#    `return_state=True` it returns both after the output. Write `continue_lstm(lstm, states, rest)`:
#    it runs `lstm` over the steps `rest`, starting where an earlier call stopped (`states` is the list
#    of states that call returned after its output), and returns the final `(h, c)`. The check runs the
#    LSTM below over the first 3 steps of the 7-step `sequences` of section 4, continues with your
#    function over the last 4, and compares the result with one call over all 7 steps.
# 3. **Reversed sequences.** Reverse every test sequence of section 2 and keep the labels. Before you
#    run anything, predict the test accuracy of each of the three trained models of section 2, say why,
#    and write your predictions into `predicted_accuracy`. The check measures the three accuracies and
#    accepts a prediction within 0.1 of each.
# 4. **Forecast horizon.** Forecast the mean temperature three days ahead instead of one, with the same
#    windows, model and training as in section 7 (one run is enough). Does persistence get worse? (That
#    is arithmetic on the data: no training needed.) Three days ahead, the seasonal average (section 7's
#    climatology) is a better forecast than persistence: does the RNN beat both? And section 7's linear
#    regression on today's numbers? Keep the `History` of the training as `history_3`, and name the new
#    model `model` and its test forecast `forecast_3`; the check uses them.

# %% tags=["solution", "nbval-ignore-output"]
# Exercise 1: write your answer where the solution markers are.
### BEGIN SOLUTION
# Why 0.5 was certain: a sequence and its twin have the same bag of tokens, so the same
# average of embeddings, so the bag model gives both the same prediction: right on one,
# wrong on the other. A position embedding added to the token embeddings and then
# averaged does not help: the average of e(token) + p(position) is the average of the
# token vectors plus the average of the position vectors, the same for a sequence and
# its twin (that wrong answer scores exactly 0.5 again; so does a linear layer in
# between). A nonlinear layer on each token's vector before the average breaks the sum
# apart: relu((e_A + p_i) W) + relu((e_B + p_j) W) is not the twin's relu((e_A + p_j) W)
# + relu((e_B + p_i) W), so the average depends on where A and B are.
token_input = keras.Input((seq_len,), dtype="int32")
# 0, 1, ..., seq_len - 1
positions = keras.ops.cumsum(keras.ops.ones_like(token_input), axis=1) - 1
token_vectors = layers.Embedding(vocab_size, 8)(token_input) + layers.Embedding(
    seq_len, 8
)(positions)
# nonlinear, one token at a time
per_token = layers.Dense(32, activation="relu")(token_vectors)
average = layers.GlobalAveragePooling1D()(per_token)
positional_bag = keras.Model(
    token_input, layers.Dense(1, activation="sigmoid")(average)
)
positional_bag.compile(
    optimizer=keras.optimizers.Adam(1e-2),
    loss="binary_crossentropy",
    metrics=["accuracy"],
)
_ = positional_bag.fit(x_train, y_train, epochs=5, batch_size=64, verbose=0)
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
positional_bag_accuracy = positional_bag.evaluate(x_test, y_test, verbose=0)[1]
print(
    f"bag with positions: test accuracy {positional_bag_accuracy:.3f} "
    f"(the bag of section 2: {order_accuracy['bag of embeddings']:.3f})"
)
poolings = [
    layer
    for layer in positional_bag.layers
    if isinstance(layer, layers.GlobalAveragePooling1D)
]
assert len(poolings) == 1, (
    "keep the average over the sequence: one GlobalAveragePooling1D layer"
)
try:  # everything after the average must read the average only
    keras.Model(poolings[0].output, positional_bag.output)
except ValueError as error:
    raise AssertionError(
        "the output must be computed from the average alone, with no other path"
    ) from error
# before the average, each position's vector may depend on its own token (and position)
# only: change one token at a time and see which vectors move
per_token_vectors = keras.Model(positional_bag.inputs, poolings[0].input)
probe_tokens = np.repeat(x_test[:32], seq_len, axis=0)
changed_tokens = probe_tokens.copy()
changed_positions = np.tile(np.arange(seq_len), 32)
changed_tokens[np.arange(len(changed_tokens)), changed_positions] = (
    changed_tokens[np.arange(len(changed_tokens)), changed_positions] + 1
) % vocab_size
moved = (
    np.abs(
        per_token_vectors.predict(changed_tokens, verbose=0)
        - per_token_vectors.predict(probe_tokens, verbose=0)
    ).max(axis=-1)
    > 1e-6
)
assert not (moved & (np.arange(seq_len) != changed_positions[:, None])).any(), (
    "a token changed the vector of another position: the model reads the order before"
    " the average"
)
assert positional_bag_accuracy >= 0.9, (
    "the average must depend on where A and B are, not only on which tokens"
)

# %% tags=["solution"]
# Exercise 2: write your answer where the solution markers are.
lstm = keras.layers.LSTM(hidden_size, return_state=True)


def continue_lstm(lstm, states, rest):
    ### BEGIN SOLUTION
    # The state of an LSTM is the pair (h, c): the call needs both, in that order.
    # Passing h alone raises an error in Keras 3; h with a zero c runs silently, from
    # another state.
    _, h, c = lstm(rest, initial_state=list(states))
    return h, c
    ### END SOLUTION


# %% tags=["check"]
def split_equals_whole(batch, split):
    """Run `lstm` over batch[:, :split], continue with continue_lstm, compare with one
    call over it all."""
    _, *first_states = lstm(batch[:, :split])
    h_split, c_split = continue_lstm(lstm, first_states, batch[:, split:])
    _, h_full, c_full = lstm(batch)
    return np.allclose(h_split, h_full, atol=1e-6) and np.allclose(
        c_split, c_full, atol=1e-6
    )


for batch, split in (
    (sequences, 3),
    (rng.normal(size=(3, 9, num_features)).astype("float32"), 4),
):
    print(
        f"(h, c) after {batch.shape[1]} steps == after {split} +"
        f" {batch.shape[1] - split} steps:",
        split_equals_whole(batch, split),
    )
    assert split_equals_whole(batch, split), (
        "continuing from the returned (h, c) must give the (h, c) of one call over all"
        " the steps"
    )

# %% tags=["solution"]
# Exercise 3: write your answer where the solution markers are.
### BEGIN SOLUTION
# The bag: a reversed sequence has the same bag of tokens, so every prediction is
# unchanged: still 0.5. The window model and the SimpleRNN have learned "A before B".
# Reversing puts B before A exactly when A was before B (and the fillers are as random
# as before), so they give the opposite of almost every label: accuracy near 0, not 0.5.
predicted_accuracy = {
    "bag of embeddings": 0.5,
    "window (flattened)": 0.0,
    "SimpleRNN": 0.0,
}
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
reversed_test = np.ascontiguousarray(x_test[:, ::-1])
reversed_accuracy = {
    name: model.evaluate(reversed_test, y_test, verbose=0)[1]
    for name, model in order_models.items()
}
print({name: round(accuracy, 3) for name, accuracy in reversed_accuracy.items()})
assert set(predicted_accuracy) == set(reversed_accuracy), (
    f"predict all three: {sorted(reversed_accuracy)}"
)
assert all(
    abs(reversed_accuracy[name] - predicted_accuracy[name]) <= 0.1
    for name in reversed_accuracy
), (
    "each predicted accuracy must be within 0.1 of the accuracy measured on reversed"
    " sequences"
)

# %% tags=["solution", "nbval-ignore-output"]
# Exercise 4: write your answer where the solution markers are.
windows_3, targets_3, today_3, target_dates_3, split_3 = make_forecast_windows(
    horizon=3
)
test_3 = split_3["test"]
change_3 = targets_3 - today_3
# the 3-day changes, scaled to unit size as in section 7
scale_3 = change_3[split_3["train"]].std()
### BEGIN SOLUTION
# three days ahead, with the same windows, model and training as for one day.
model = build_forecaster()
history_3 = fit_forecaster(model, windows_3, change_3 / scale_3, split_3)
forecast_3 = (
    today_3[test_3] + scale_3 * model.predict(windows_3[test_3], verbose=0)[:, 0]
)
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
observed_3 = targets_3[test_3]
season_3 = season_features(target_dates_3)
fit_3 = split_3["train"] | split_3["valid"]
forecasts_3 = {
    "persistence": today_3[test_3],
    "RNN": forecast_3,
    "climatology": least_squares_forecast(
        season_3[fit_3], targets_3[fit_3], season_3[test_3]
    ),
    "linear, today": (
        today_3[test_3]
        + least_squares_forecast(
            windows_3[fit_3, -1], change_3[fit_3], windows_3[test_3, -1]
        )
    ),
}
errors_3 = {
    name: np.abs(forecast - observed_3) for name, forecast in forecasts_3.items()
}
for name, errors in errors_3.items():
    print(f"3 days ahead, {name:>13}: test MAE {errors.mean():.3f} °C")
gain_3 = errors_3["linear, today"] - errors_3["RNN"]
gain_3_error = gain_3.std(ddof=1) / np.sqrt(len(gain_3))
print(
    f"RNN gain over the regression: {gain_3.mean():+.3f} °C"
    f" ({gain_3.mean() / gain_3_error:+.1f} standard errors)"
)
# data only, the same for every seed: persistence gets worse with the horizon, and the
# season beats it
assert errors_3["persistence"].mean() > test_mae["persistence"] + 0.3, (
    "persistence gets worse with the horizon"
)
assert errors_3["climatology"].mean() < errors_3["persistence"].mean(), (
    "three days ahead the season beats today"
)
# a model of its own, trained on the 3-day changes: its best validation loss is
# reproduced on them
assert all(model is not forecaster for forecaster in forecasters), (
    "train a new model for three days ahead"
)
valid_3 = split_3["valid"]
assert np.isclose(
    model.evaluate(windows_3[valid_3], change_3[valid_3] / scale_3, verbose=0),
    min(history_3.history["val_loss"]),
    rtol=1e-3,
), "train on change_3 / scale_3, validated on 2014"
assert np.allclose(
    forecast_3,
    today_3[test_3] + scale_3 * model.predict(windows_3[test_3], verbose=0)[:, 0],
    atol=1e-4,
), "forecast_3 must be today_3 plus scale_3 times the new model's test prediction"
# the check of what was learned: the RNN beats both no-skill forecasts, but not the
# regression on today
assert errors_3["RNN"].mean() < errors_3["climatology"].mean(), (
    "the RNN beats both three days ahead"
)
assert gain_3.mean() < 2 * gain_3_error, (
    "the RNN does not beat the regression on today's numbers three days ahead"
)
