# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
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
# # Chapter 3 — LSTM and GRU: gates that remember
#
# Chapter 2 showed why a plain recurrent network forgets: the gradient that links a late loss to an
# early input is a product of many Jacobians, and it vanishes. This chapter builds the two cells that
# fixed the problem in practice, the [LSTM](glossary.md#long-short-term-memory) and the
# [GRU](glossary.md#gated-recurrent-unit). We write both from scratch in NumPy and check them against
# Keras to float precision, then run the experiment that decides the matter: on the
# [adding problem](glossary.md#adding-problem), with the cue 100 steps away from the answer, a
# `SimpleRNN` with the same optimiser and as many epochs stays at the trivial baseline while an LSTM
# and a GRU solve it in a few epochs. We look inside the
# trained LSTM to watch its cell hold the cue, train a small character-level
# [language model](glossary.md#language-model) on Shakespeare, and end with what a GPU's cuDNN kernels
# need.
#
# **You will learn to**
# - write the LSTM and GRU equations and say what each gate does;
# - explain why the LSTM's additive cell update lets the gradient flow over long distances;
# - count the parameters of `SimpleRNN`, `GRU` and `LSTM` layers by hand;
# - reproduce `keras.layers.LSTM` and `keras.layers.GRU` with a few lines of NumPy;
# - show on the adding problem that gated cells learn long dependencies that a `SimpleRNN` cannot;
# - read gate activations, measure a language model in
#   [bits per character](glossary.md#bits-per-character) and sample from it;
# - keep a recurrent layer on the fast cuDNN path of a GPU.
#
# **Prerequisites**: chapter 1 (the recurrence $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$) and
# chapter 2 (backpropagation through time, vanishing gradients).
#
# **Run time**: about two and a half minutes on a 2-core CPU (the README's table has the measured time;
# not measured on a GPU).

# %% tags=["bootstrap"]
# Finds the book's helpers (utils/) and data/ in the folders above this notebook. A notebook on its own
# (Colab, Kaggle) first fetches the book from BOOK_REPOSITORY, set with `python -m utils.bootstrap`.
import pathlib
import subprocess
import sys

BOOK_REPOSITORY = ""
here = pathlib.Path.cwd().resolve()
marker = pathlib.Path("utils", "bootstrap.py")
book_root = next((p for p in (here, *here.parents) if (p / marker).is_file()), here / "rnn-book")
if not (book_root / marker).is_file():
    if not BOOK_REPOSITORY:
        raise RuntimeError(f"no utils/ in {here} or above it, and no BOOK_REPOSITORY to fetch the book from: "
                           "open the notebook inside the book, or see 'Colab and Kaggle' in the README")
    print(f"fetching the book from {BOOK_REPOSITORY} into {book_root} (on Kaggle: Settings, Internet on)")
    subprocess.run(["git", "clone", "--quiet", "--depth=1", BOOK_REPOSITORY, str(book_root)], check=True)
if str(book_root) not in sys.path:
    sys.path.insert(0, str(book_root))
if book_root == here / "rnn-book":
    from utils.bootstrap import install_missing

    install_missing()

# %% tags=["nbval-ignore-output"]
import re
from collections import Counter

import keras
import matplotlib.pyplot as plt
import numpy as np

from utils.book import EpochLogger, gpu_available, setup_book
from utils.data import char_windows, load_shakespeare
from utils.diagrams import draw_lstm_cell
from utils.generation import generate
from utils.measure import interleaved_seconds, paired_ratio
from utils.plots import plot_learning_curves

seed = setup_book()
rng = np.random.default_rng(seed)

# %% [markdown]
# ## 1. The long-memory problem
#
# Read this text and fill the gap:

# %%
story = ("Tom is a cat . He lives with an old sailor in a small house by the harbour . Every morning "
         "the sailor walks to the market , buys bread and talks with the fishermen about the weather "
         "and the boats . Tom 's favourite food is ___")
words = story.split()
cue_position, gap_position = words.index("cat"), words.index("___")
print(f"{len(words)} words; the cue 'cat' is word {cue_position}, the gap is word {gap_position}")
print("distance between cue and answer:", gap_position - cue_position, "words")

# %% [markdown]
# "fish" is the answer because Tom is a cat, and that fact sits more than 40 words back, behind a paragraph
# about markets and weather. A model has to *store* the cue when it sees it, *keep* it unchanged
# while it reads unrelated words, and *use* it at the end. A `SimpleRNN` rewrites its whole state at
# every step, $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b)$, so the cue survives only as a fading
# echo; and in training, the gradient that should tell the network to store the cue is the product
#
# $$\frac{\partial h_T}{\partial h_t} = \prod_{k=t+1}^{T} W_{hh} \operatorname{diag}\!\left(1 - h_k^2\right)$$
#
# (in the row-vector form of chapter 1, the factors ordered from $k = t+1$ on the left), which, as
# chapter 2 measured, shrinks geometrically with the distance $T - t$. Gated cells add a
# memory that is *not* rewritten by default: it is kept unless a gate decides otherwise.
#
# ## 2. The LSTM: a cell state guarded by three gates
#
# The long short-term memory (Hochreiter & Schmidhuber, 1997; with the
# [forget gate](glossary.md#forget-gate) of Gers et al., 2000) carries two vectors from step to step:
# the hidden state $h_t$, which is its output, and the **[cell state](glossary.md#cell-state)** $c_t$,
# its memory. Three gates, each a sigmoid with values in $(0, 1)$, decide what happens to the memory:
#
# $$
# \begin{aligned}
# i_t &= \sigma(x_t W_i + h_{t-1} U_i + b_i) && \text{input gate: how much new content to write}\\
# f_t &= \sigma(x_t W_f + h_{t-1} U_f + b_f) && \text{forget gate: how much old memory to keep}\\
# g_t &= \tanh(x_t W_g + h_{t-1} U_g + b_g) && \text{candidate content}\\
# o_t &= \sigma(x_t W_o + h_{t-1} U_o + b_o) && \text{output gate: how much memory to show}\\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t && \text{additive memory update}\\
# h_t &= o_t \odot \tanh(c_t)
# \end{aligned}
# $$
#
# We write the equations with row vectors ($x_t W$), as Keras computes them. The diagram shows one
# step: the cell state runs along the top, touched only by a multiplication (forget) and an addition
# (write).

# %%
draw_lstm_cell(plt.figure(figsize=(9, 4.6)).gca())
plt.show()

# %% [markdown]
# ### Why the additive update lets the gradient through
#
# Follow the gradient along the top line only. Since $c_t = f_t \odot c_{t-1} + i_t \odot g_t$,
#
# $$\frac{\partial c_T}{\partial c_t}\Big|_{\text{cell path}} = \prod_{k=t+1}^{T} \operatorname{diag}(f_k).$$
#
# Compare it with the `SimpleRNN` product above. There, every factor contains the same matrix
# $W_{hh}$ and a $\tanh$ derivative $1 - h_k^2 \le 1$, whether or not the network *wants* to forget;
# keeping a value for 100 steps needs those factors to multiply to about 1 in just the right
# directions, which training cannot find when the gradient has already vanished. On the cell path
# there is no weight matrix and no squashing derivative, only the forget gate: when the network sets
# $f_k \approx 1$ for a unit, the product stays near 1 over any distance, and the error signal
# reaches the step where the cue was written. (The full Jacobian also has terms through $h_{t-1}$
# inside the gates; they can vanish, but they no longer have to carry the signal alone.) Keras helps
# from the start: `unit_forget_bias=True` initialises $b_f$ to 1, so that $f \approx \sigma(1) \approx
# 0.73$ before training instead of 0.5.
#
# ## 3. The GRU: two gates, one state
#
# The gated recurrent unit (Cho et al., 2014) merges cell and hidden state into one vector $h_t$ and
# uses two gates. The **[update gate](glossary.md#update-gate)** $z_t$ interpolates between the old
# state and a candidate; the **[reset gate](glossary.md#reset-gate)** $r_t$ decides how much of the
# old state the candidate may see. In the form Keras 3 uses by default (`reset_after=True`, the form
# of cuDNN), the reset gate acts *after* the recurrent matrix product:
#
# $$
# \begin{aligned}
# z_t &= \sigma(x_t W_z + b^{x}_z + h_{t-1} U_z + b^{h}_z) && \text{update gate}\\
# r_t &= \sigma(x_t W_r + b^{x}_r + h_{t-1} U_r + b^{h}_r) && \text{reset gate}\\
# \tilde h_t &= \tanh\!\left(x_t W_h + b^{x}_h + r_t \odot (h_{t-1} U_h + b^{h}_h)\right) && \text{candidate}\\
# h_t &= z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t
# \end{aligned}
# $$
#
# The last line plays the role of the LSTM's cell update, with coupled gates: keeping ($z_t$) and
# writing ($1 - z_t$) always add up to one, so the path from $h_{t-1}$ to $h_t$ has the factor
# $\operatorname{diag}(z_t)$, again without a weight matrix. Compared with the LSTM, the GRU has no
# separate memory, no output gate and one gate fewer, hence fewer parameters; which of the two is
# better depends on the task, and on most tasks they are close.
#
# ## 4. Parameter counts
#
# With $D$ input features and $H$ units, each gate or candidate has an input matrix ($D \times H$), a
# recurrent matrix ($H \times H$) and a bias ($H$). The LSTM has four such blocks, a `SimpleRNN` one.
# Keras's GRU has three blocks and, with `reset_after=True`, *two* biases per block (one for the input
# part, one for the recurrent part):
#
# $$\text{SimpleRNN: } H(D + H + 1), \qquad \text{LSTM: } 4H(D + H + 1), \qquad
# \text{GRU: } 3H(D + H + 2).$$

# %%
num_features, hidden_size = 3, 8
layer_types = {"SimpleRNN": keras.layers.SimpleRNN, "GRU": keras.layers.GRU, "LSTM": keras.layers.LSTM}
formulas = {
    "SimpleRNN": hidden_size * (num_features + hidden_size + 1),
    "GRU": 3 * hidden_size * (num_features + hidden_size + 2),
    "LSTM": 4 * hidden_size * (num_features + hidden_size + 1),
}
for name, layer_type in layer_types.items():
    counted = keras.Sequential([keras.Input((None, num_features)), layer_type(hidden_size)]).count_params()
    print(f"{name:>9}: count_params {counted:>4}, formula {formulas[name]:>4}")
    assert counted == formulas[name]

# %% [markdown]
# At the same width an LSTM costs four times a `SimpleRNN` and a GRU about three times. Comparing
# them at equal width, as we do below, is therefore generous to the `SimpleRNN`'s competitors; the
# adding problem's result is so lopsided that it does not matter.
#
# ## 5. Both cells from scratch, checked against Keras
#
# Keras packs the blocks side by side: the LSTM's `kernel` is $D \times 4H$ with the blocks in the
# order $[i, f, c, o]$ (the candidate $g$ is the "c" block); the GRU's is $D \times 3H$ in the order
# $[z, r, h]$, and its bias has shape $(2, 3H)$: row 0 for the input part, row 1 for the recurrent part.
# The LSTM step returns its gates too, so that we can look at them later.

# %%
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_step(x, h, c, kernel, recurrent_kernel, bias):
    """One LSTM step in Keras's layout (gate blocks [i, f, c, o]); returns h, c and the gates."""
    pre_input, pre_forget, pre_candidate, pre_output = np.split(x @ kernel + h @ recurrent_kernel + bias, 4, axis=-1)
    input_gate, forget_gate, output_gate = sigmoid(pre_input), sigmoid(pre_forget), sigmoid(pre_output)
    candidate = np.tanh(pre_candidate)
    c = forget_gate * c + input_gate * candidate
    h = output_gate * np.tanh(c)
    return h, c, {"input": input_gate, "forget": forget_gate, "output": output_gate, "candidate": candidate}


def gru_step(x, h, kernel, recurrent_kernel, bias):
    """One GRU step with reset_after=True (Keras 3's default), gate blocks [z, r, h], bias of shape (2, 3H)."""
    x_z, x_r, x_h = np.split(x @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h @ recurrent_kernel + bias[1], 3, axis=-1)
    update_gate, reset_gate = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    candidate = np.tanh(x_h + reset_gate * h_h)
    return update_gate * h + (1 - update_gate) * candidate


# %% [markdown]
# The loops over time start from zero states and collect every step, as `return_sequences=True` does.

# %%
def lstm_forward(inputs, kernel, recurrent_kernel, bias):
    """Run an LSTM over (batch, time, features); return hidden states, cell states and gates, each (batch, time, H)."""
    batch_size, num_steps, _ = inputs.shape
    h = c = np.zeros((batch_size, recurrent_kernel.shape[0]))
    steps = []
    for t in range(num_steps):
        h, c, gates = lstm_step(inputs[:, t], h, c, kernel, recurrent_kernel, bias)
        steps.append({"h": h, "c": c, **gates})
    return {key: np.stack([step[key] for step in steps], axis=1) for key in steps[0]}


def gru_forward(inputs, kernel, recurrent_kernel, bias):
    """Run a GRU over (batch, time, features); return the hidden states (batch, time, H)."""
    h = np.zeros((inputs.shape[0], recurrent_kernel.shape[0]))
    states = []
    for t in range(inputs.shape[1]):
        h = gru_step(inputs[:, t], h, kernel, recurrent_kernel, bias)
        states.append(h)
    return np.stack(states, axis=1)


# %% [markdown]
# Now two Keras layers with random weights, on random sequences. We also give the LSTM a non-trivial
# bias (Keras initialises it to zeros and ones) so that the check covers every block.

# %%
sequences = rng.normal(size=(4, 30, num_features)).astype("float32")
keras_lstm = keras.layers.LSTM(hidden_size, return_sequences=True)
keras_gru = keras.layers.GRU(hidden_size, return_sequences=True)
keras_lstm(sequences), keras_gru(sequences)  # the first call creates the weights
keras_lstm.set_weights([*keras_lstm.get_weights()[:2], rng.normal(size=4 * hidden_size).astype("float32")])
keras_gru.set_weights([*keras_gru.get_weights()[:2], rng.normal(size=(2, 3 * hidden_size)).astype("float32")])
lstm_states_keras, gru_states_keras = keras_lstm(sequences), keras_gru(sequences)
print("LSTM weights:", [w.shape for w in keras_lstm.get_weights()])
print("GRU weights: ", [w.shape for w in keras_gru.get_weights()])

# %%
lstm_states_numpy = lstm_forward(sequences.astype("float64"), *keras_lstm.get_weights())["h"]
gru_states_numpy = gru_forward(sequences.astype("float64"), *keras_gru.get_weights())
print("LSTM agrees with keras.layers.LSTM:", np.allclose(lstm_states_numpy, lstm_states_keras, rtol=1e-5, atol=1e-6))
print("GRU agrees with keras.layers.GRU:  ", np.allclose(gru_states_numpy, gru_states_keras, rtol=1e-5, atol=1e-6))
assert np.allclose(lstm_states_numpy, lstm_states_keras, rtol=1e-5, atol=1e-6)
assert np.allclose(gru_states_numpy, gru_states_keras, rtol=1e-5, atol=1e-6)

# %% [markdown]
# Both cells agree with Keras at every one of the 30 steps, within float32 rounding: the equations
# above, with the block order and the two GRU biases, are exactly what the layers compute. We will
# reuse these functions to look inside a trained LSTM and to sample text from a trained GRU.
#
# ## 6. The decisive experiment: the adding problem
#
# The adding problem (Hochreiter & Schmidhuber, 1997) isolates long memory. Each input is a sequence
# of $T = 100$ pairs (value, marker): the values are uniform in $[0, 1]$, and the marker is 1 at exactly
# two random steps and 0 elsewhere. The target is the sum of the two marked values. The network must
# notice a marker, store its value, ignore up to 98 other values and add the second one at the end.
#
# A model that ignores its input predicts the mean of the target, 1, and makes a mean squared error
# equal to the variance of a sum of two uniform values: $2 \cdot \tfrac{1}{12} = \tfrac{1}{6} \approx
# 0.167$. That is the *trivial baseline*; anything near it has learned nothing.

# %%
adding_steps = 100


def make_adding_problem(num_sequences, rng, num_steps=adding_steps):
    """Inputs (num_sequences, num_steps, 2) of (value, marker) pairs; targets: the sum of the two marked values."""
    values = rng.uniform(0, 1, size=(num_sequences, num_steps))
    markers = np.zeros((num_sequences, num_steps))
    for row in markers:
        row[rng.choice(num_steps, size=2, replace=False)] = 1
    inputs = np.stack([values, markers], axis=-1).astype("float32")
    return inputs, (values * markers).sum(axis=1).astype("float32")


x_adding_train, y_adding_train = make_adding_problem(8000, rng)
x_adding_valid, y_adding_valid = make_adding_problem(1000, rng)
trivial_mse = float(((y_adding_valid - y_adding_train.mean()) ** 2).mean())
print("train:", x_adding_train.shape, " valid:", x_adding_valid.shape)

# %% tags=["nbval-ignore-output"]
print(f"trivial baseline on the validation set: MSE {trivial_mse:.4f} (theory 1/6 = {1 / 6:.4f})")
assert abs(trivial_mse - 1 / 6) < 0.03

# %% [markdown]
# Three models of the same width, 32 units, each followed by a `Dense(1)` readout, with the settings
# that work well here: Adam with a learning rate of $10^{-2}$, gradient clipping at norm 1 and batches
# of 64. A gated model stops as soon as its validation MSE is below 0.005 (at most 15 epochs); the
# `SimpleRNN` then gets as many epochs as the slower of the two gated models needed.

# %%
class StopBelow(keras.callbacks.Callback):
    """Stop training once the validation loss is below `target`."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get("val_loss", np.inf) < self.target:
            self.model.stop_training = True


def train_adding_model(name, epochs, target=0.0):
    model = keras.Sequential([keras.Input((adding_steps, 2)), layer_types[name](32), keras.layers.Dense(1)], name=name)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=1.0), loss="mse")
    history = model.fit(x_adding_train, y_adding_train, validation_data=(x_adding_valid, y_adding_valid),
                        epochs=epochs, batch_size=64, verbose=0, callbacks=[StopBelow(target), EpochLogger(3, name)])
    return model, history


# %% tags=["nbval-ignore-output"]
adding_models, adding_histories = {}, {}
for name in ("GRU", "LSTM"):
    adding_models[name], adding_histories[name] = train_adding_model(name, epochs=15, target=0.005)
simple_rnn_epochs = max(len(history.history["loss"]) for history in adding_histories.values())
adding_models["SimpleRNN"], adding_histories["SimpleRNN"] = train_adding_model("SimpleRNN", epochs=simple_rnn_epochs)

# %% tags=["nbval-ignore-output"]
adding_mse = {name: float(model.evaluate(x_adding_valid, y_adding_valid, verbose=0))
              for name, model in adding_models.items()}
for name, mse in adding_mse.items():
    print(f"{name:>9}: validation MSE {mse:.4f} after {len(adding_histories[name].history['loss'])} epochs "
          f"({mse / trivial_mse:.1%} of the trivial baseline)")

# %%
assert adding_mse["LSTM"] < 0.01, "the LSTM should solve the adding problem with T = 100"
assert adding_mse["GRU"] < 0.01, "the GRU should solve the adding problem with T = 100"
assert adding_mse["SimpleRNN"] > 0.7 * trivial_mse, "the SimpleRNN should stay near the trivial baseline"

# %% [markdown]
# The gated models end far below the baseline, errors of a few hundredths on a target between 0 and
# 2, while the `SimpleRNN` stays at the baseline with the same optimiser, the same data and as many
# epochs. The learning curves show the typical shape: the gated models sit on the baseline for an
# epoch or a few while they discover the markers, then drop by orders of magnitude.

# %%
ax = plot_learning_curves(adding_histories, title=f"Adding problem, T = {adding_steps}: 32 units each",
                          log_scale=True)
ax.axhline(1 / 6, color="0.4", linestyle=":", label="trivial baseline (1/6)")
ax.set_ylabel("mean squared error (log scale)")
ax.legend()
plt.show()

# %% [markdown]
# ## 7. Look inside: the cell holds the cue
#
# The trained weights of the Keras LSTM plug straight into our NumPy `lstm_forward`, which returns the
# gates and the cell state at every step. We take the validation sequence whose two markers are
# furthest apart and plot the [input gate](glossary.md#input-gate), the forget gate and the cell state
# of the unit that forgets least between the two markers (the largest product of forget gates). Look
# for jumps at the markers and slow change between.

# %%
lstm_kernel, lstm_recurrent_kernel, lstm_bias = adding_models["LSTM"].layers[0].get_weights()
trace = lstm_forward(x_adding_valid.astype("float64"), lstm_kernel, lstm_recurrent_kernel, lstm_bias)
marked = x_adding_valid[:, :, 1] == 1
cell_change = np.abs(np.diff(trace["c"], axis=1))  # |c_t - c_{t-1}| for t = 1..T-1
marked_change = cell_change[marked[:, 1:]].mean()
unmarked_change = cell_change[~marked[:, 1:]].mean()
print("cell state shape:", trace["c"].shape)

# %% tags=["nbval-ignore-output"]
print(f"mean |c_t - c_(t-1)| at marked steps {marked_change:.4f}, at unmarked steps {unmarked_change:.4f}, "
      f"ratio {marked_change / unmarked_change:.1f}")
assert marked_change > 3 * unmarked_change, "the cell state should move at the markers and rest in between"

# %%
marker_positions = np.argwhere(marked)[:, 1].reshape(-1, 2)
example = int(np.argmax(marker_positions[:, 1] - marker_positions[:, 0]))
first_marker, second_marker = marker_positions[example]
forget_between_markers = trace["forget"][example, first_marker + 1:second_marker].prod(axis=0)
memory_unit = int(np.argmax(forget_between_markers))
fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
for ax, key, label in zip(axes, ["input", "forget", "c"], ["input gate $i_t$", "forget gate $f_t$", "cell state $c_t$"],
                          strict=True):
    ax.plot(trace[key][example, :, memory_unit], label=f"unit {memory_unit}")
    for position in marker_positions[example]:
        ax.axvline(position, color="0.4", linestyle=":", label="marker" if position == first_marker else None)
    ax.set_ylabel(label)
axes[0].set_title("The unit that forgets least, in the trained LSTM, on one adding-problem sequence")
axes[0].legend(ncol=2)
axes[-1].set_xlabel("time step")
plt.show()

# %% [markdown]
# This unit is the long memory. At a marker its input gate opens (a spike) and its cell state jumps;
# between the markers the input gate stays low, so the unmarked values barely enter, and the forget
# gate stays close to 1, so the stored value changes only slowly (it drifts, and one unit alone is a
# noisy record). Whether the value is still *there* when the second marker arrives is a question for
# the whole cell state, and a linear probe answers it below.
# Other units do other jobs (some react at the markers and forget within a few steps,
# some drift with the running input); plot a few with `trace["c"][example, :, unit]`. Averaged over
# all units and the whole validation set, the cell state moves several times more at a marked step
# than at an unmarked one, which is what the assert checks. The network found the memory mechanism
# the equations promise, without being told.
#
# **A linear probe.** If the LSTM still holds the first marked value just before the second marker, a
# linear function of its cell state $c_t$ at that step recovers it. We fit a least-squares readout
# (with a small ridge penalty, since saturated units make features nearly collinear) on half of the
# validation sequences and measure $R^2$ on the other half; the same probe on the trained
# `SimpleRNN`'s state is the comparison.

# %%
def probe_r2(features, targets, ridge=1.0):
    """R² on the second half of a linear ridge readout (with intercept) fitted on the first half."""
    design = np.column_stack([features, np.ones(len(targets))])
    half = len(targets) // 2
    gram = design[:half].T @ design[:half] + ridge * np.eye(design.shape[1])
    coefficients = np.linalg.solve(gram, design[:half].T @ targets[:half])
    residuals = targets[half:] - design[half:] @ coefficients
    return 1 - residuals.var() / targets[half:].var()


sequence_rows = np.arange(len(x_adding_valid))
first_marked, second_marked = np.argwhere(marked)[:, 1].reshape(-1, 2).T  # each row has two markers, in order
first_values = x_adding_valid[sequence_rows, first_marked, 0].astype("float64")
rnn_kernel, rnn_recurrent_kernel, rnn_bias = adding_models["SimpleRNN"].layers[0].get_weights()
rnn_state, rnn_all_states = np.zeros((len(sequence_rows), 32)), []
for t in range(adding_steps):
    rnn_state = np.tanh(x_adding_valid[:, t] @ rnn_kernel + rnn_state @ rnn_recurrent_kernel + rnn_bias)
    rnn_all_states.append(rnn_state)
rnn_all_states = np.stack(rnn_all_states, axis=1)
probe = {"LSTM cell state": probe_r2(trace["c"][sequence_rows, second_marked - 1], first_values),
         "SimpleRNN state": probe_r2(rnn_all_states[sequence_rows, second_marked - 1], first_values)}

# %% tags=["nbval-ignore-output"]
for name, r2 in probe.items():
    print(f"{name:>15}, the step before the second marker: probe R² for the first marked value {r2:.3f}")
assert probe["LSTM cell state"] > 0.5 and probe["LSTM cell state"] > probe["SimpleRNN state"] + 0.3

# %% [markdown]
# A linear readout of the LSTM's cell state recovers most of the variance of the first value just
# before the second marker arrives; the same readout of the `SimpleRNN`'s state recovers far less
# (both R² are printed above).
#
# The same trained weights make the gradient argument concrete. For every validation sequence we
# compare the cell path's factor $\prod_k f_k$ from the first marker to the end (for the unit that
# keeps it best) with the norm of the `SimpleRNN`'s Jacobian product over the same steps, computed with
# its trained weights. One sequence could be a lucky or unlucky case; the medians over all of them are
# what the assert compares.

# %%
first_markers = np.argmax(marked, axis=1)  # the first marked step of each sequence
log_forget_to_end = np.cumsum(np.log(trace["forget"])[:, ::-1], axis=1)[:, ::-1]  # sum of log f_k for k >= t
rows = np.arange(len(first_markers))
lstm_products = np.exp(log_forget_to_end[rows, first_markers + 1].max(axis=1))  # best unit, k > first marker

rnn_states, rnn_jacobians = np.zeros((len(rows), 32)), np.tile(np.eye(32), (len(rows), 1, 1))
for t in range(adding_steps):
    rnn_states = np.tanh(x_adding_valid[:, t] @ rnn_kernel + rnn_states @ rnn_recurrent_kernel + rnn_bias)
    step_jacobians = rnn_recurrent_kernel * (1 - rnn_states[:, None, :] ** 2)  # row form: W_hh diag(1 - h_t^2)
    after_marker = (t > first_markers)[:, None, None]
    rnn_jacobians = np.where(after_marker, rnn_jacobians @ step_jacobians, rnn_jacobians)
rnn_norms = np.linalg.norm(rnn_jacobians, 2, axis=(1, 2))

# %% tags=["nbval-ignore-output"]
print(f"{adding_steps - 1 - np.median(first_markers):.0f} steps from the first marker to the end (median)")
print(f"LSTM cell path, best unit: median prod f_k = {np.median(lstm_products):.3f}")
print(f"SimpleRNN: median norm of prod W_hh diag(1 - h_k^2) = {np.median(rnn_norms):.1e}")
assert np.median(lstm_products) > 100 * np.median(rnn_norms)

# %% [markdown]
# The LSTM's best unit keeps a noticeable fraction of its gradient over the whole distance; the
# `SimpleRNN`'s Jacobian product has shrunk by orders of magnitude. That is the whole story of this
# chapter in two numbers.
#
# ## 8. A character-level language model on Shakespeare
#
# A language model predicts the next character from the previous ones. We train on the six training
# tragedies (*Hamlet*, *Julius Caesar*, *King Lear*, *Macbeth*, *Othello*, *Romeo and Juliet*) and
# measure on a play the model never saw, *A Midsummer Night's Dream* (the book's
# validation split). The inputs are windows of 100 characters, the targets the same windows shifted by
# one: a many-to-many model with a prediction at every step.

# %%
full_train_text = load_shakespeare("train")
train_text = full_train_text
valid_text = load_shakespeare("valid")
alphabet = sorted(set(full_train_text))
char_to_id = {char: index for index, char in enumerate(alphabet)}
window_length = 100
x_chars_train, y_chars_train = char_windows(train_text, char_to_id, window_length)  # non-overlapping, shifted by one
x_chars_valid, y_chars_valid = char_windows(valid_text, char_to_id, window_length)
print(f"alphabet: {len(alphabet)} characters; train windows {x_chars_train.shape}, valid windows {x_chars_valid.shape}")
print("every validation character is in the alphabet:", set(valid_text) <= set(alphabet))

# %% [markdown]
# We report the loss in **bits per character** (the cross-entropy in base 2), and its
# *perplexity* $2^{\text{bits}}$, the number of equally likely characters the model is as unsure as.
# A model that knows nothing spends $\log_2 V$ bits on each of the $V$ characters; a *unigram* model
# that only knows how frequent each character is does better, but knows no context.

# %% tags=["nbval-ignore-output"]
uniform_bits = np.log2(len(alphabet))
char_counts = np.bincount(x_chars_train.ravel(), minlength=len(alphabet)) + 1
unigram_bits = float(-np.log2(char_counts / char_counts.sum())[y_chars_valid].mean())
print(f"uniform baseline: {uniform_bits:.3f} bits/char; unigram baseline on the valid play: {unigram_bits:.3f}")

# %% [markdown]
# The real test of a neural language model is **counting**. An $n$-gram model predicts a character
# from the $n - 1$ before it with a table of counts from the training plays, smoothed by adding $k$ to
# every count so that unseen combinations keep some probability:
# $P(c \mid \text{context}) = (\text{count}(\text{context}\, c) + k) / (\text{count}(\text{context}) + kV)$.
# Longer contexts know more but are seen less often. We try $n = 2$ to $5$ and three values of $k$ and
# keep the best on the validation play itself, which flatters the baseline: the GRU must beat the best
# table we can pick with hindsight.

# %%
def ngram_bits(train, test, n, k_values):
    """Bits per character of add-k n-gram models on `test` (every character after the first n-1), per k."""
    grams = Counter(train[i:i + n] for i in range(len(train) - n + 1))
    contexts = Counter(train[i:i + n - 1] for i in range(len(train) - n + 2))
    gram_counts = np.array([grams[test[i - n + 1:i + 1]] for i in range(n - 1, len(test))], dtype="float64")
    context_counts = np.array([contexts[test[i - n + 1:i]] for i in range(n - 1, len(test))], dtype="float64")
    return {k: float(-np.log2((gram_counts + k) / (context_counts + k * len(alphabet))).mean()) for k in k_values}


# %% tags=["nbval-ignore-output"]
ngram_results = {n: ngram_bits(train_text, valid_text, n, (0.05, 0.2, 1.0)) for n in (2, 3, 4, 5)}
ngram_best = {n: min(results.values()) for n, results in ngram_results.items()}
best_n = min(ngram_best, key=ngram_best.get)
for n, bits in ngram_best.items():
    best_k = min(ngram_results[n], key=ngram_results[n].get)
    print(f"{n}-gram (best k = {best_k}): {bits:.3f} bits/char, perplexity {2 ** bits:.1f}")
print(f"best n-gram: n = {best_n}")
assert best_n in (3, 4) and ngram_best[5] > ngram_best[best_n], "longer contexts are too rare to count"

# %% [markdown]
# The tables improve up to a context of a few characters and then get worse: longer contexts are too
# rare in 840,000 characters to count reliably. The model: an embedding of 64 dimensions, a GRU of
# 256 units returning every step, and a dense layer giving the logits of the next character. Three
# epochs over the six plays, at a learning rate of $10^{-2}$, fit in the chapter's budget on a 2-core
# CPU.

# %%
char_model = keras.Sequential([
    keras.Input((None,), dtype="int32"),
    keras.layers.Embedding(len(alphabet), 64),
    keras.layers.GRU(256, return_sequences=True),
    keras.layers.Dense(len(alphabet)),
], name="char_gru")
char_model.compile(optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=1.0),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
print(f"{char_model.count_params()} parameters")

# %% tags=["nbval-ignore-output"]
char_history = char_model.fit(x_chars_train, y_chars_train, epochs=3, batch_size=64, verbose=0,
                              callbacks=[EpochLogger(1, "char GRU")])
valid_bits = char_model.evaluate(x_chars_valid, y_chars_valid, verbose=0) / np.log(2)
print(f"validation play: {valid_bits:.3f} bits/char, perplexity {2 ** valid_bits:.1f} "
      f"(best n-gram {ngram_best[best_n]:.3f}, unigram {unigram_bits:.3f}, uniform {uniform_bits:.3f})")

# %%
assert valid_bits < 0.6 * uniform_bits, "the GRU should be well below the uniform baseline"
assert valid_bits < unigram_bits - 0.5, "the GRU should use context, not only character frequencies"
assert valid_bits < ngram_best[best_n] - 0.05, "the GRU should beat the best table of counts"

# %% [markdown]
# On a play it never saw, the model spends far fewer bits than the uniform baseline and the unigram
# model, and fewer than the best $n$-gram table picked with hindsight. The margin over
# counting is modest at this budget: with 840,000 characters a table of 4-character contexts is a
# strong model of spelling. What the GRU has and the table lacks is a state that can carry more than a
# few characters.
#
# ### Sampling with temperature
#
# To generate text we feed a prompt, then repeatedly draw the next character from the softmax of the
# logits divided by a *[temperature](glossary.md#temperature)* $\tau$: $\tau < 1$ sharpens the
# distribution (safer, more repetitive text), $\tau > 1$ flattens it (more surprising, more misspelt).
# This is the autoregressive one-to-many of chapter 1: the loop is `utils.generation.generate`, and
# the one-step model is our NumPy `gru_step` with the trained weights, followed by the sampling (one
# step per character, no Keras call). Each step also records the entropy of the distribution it drew
# from.

# %%
def sample_text(model, prompt, num_chars, temperature, rng):
    """Feed `prompt` through the trained embedding-GRU-dense model, then sample `num_chars` characters.
    Returns the text and the entropy (bits) of each sampling distribution."""
    embedding, kernel, recurrent_kernel, bias, dense_kernel, dense_bias = model.get_weights()
    state = np.zeros(recurrent_kernel.shape[0])
    for char in prompt[:-1]:
        state = gru_step(embedding[char_to_id[char]], state, kernel, recurrent_kernel, bias)

    def step(char_and_entropy, state):
        state = gru_step(embedding[char_to_id[char_and_entropy[0]]], state, kernel, recurrent_kernel, bias)
        logits = (state @ dense_kernel + dense_bias) / temperature
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        entropy = float(-(probabilities * np.log2(probabilities + 1e-30)).sum())
        return (alphabet[rng.choice(len(alphabet), p=probabilities)], entropy), state

    generated, _ = generate(step, (prompt[-1], None), state, num_chars)
    return prompt + "".join(char for char, _ in generated), np.array([entropy for _, entropy in generated])


# %% tags=["nbval-ignore-output"]
temperatures, prompt = (0.5, 1.0, 1.5), "\n\nHam.\n"
samples, sample_entropy = {}, {}
for temperature in temperatures:
    samples[temperature], entropies = sample_text(char_model, prompt, 400, temperature, rng)
    sample_entropy[temperature] = entropies.mean()
training_words = set(re.findall(r"[a-z]+", full_train_text.lower()))


def real_word_share(text):
    """Share of the generated words (letters only, lowercased) that occur in the training plays."""
    words = re.findall(r"[a-z]+", text[len(prompt):].lower())
    return np.mean([word in training_words for word in words])


for temperature, text in samples.items():
    print(f"----- temperature {temperature}: mean entropy {sample_entropy[temperature]:.2f} bits/char, "
          f"real words {real_word_share(text):.0%} -----{text[:len(prompt) + 200]}\n")

# %%
assert all(len(text) == len(prompt) + 400 for text in samples.values())
assert sample_entropy[0.5] < sample_entropy[1.0] < sample_entropy[1.5], "entropy rises with the temperature"
assert real_word_share(samples[0.5]) > real_word_share(samples[1.5]) + 0.1, "real words get rarer when hotter"

# %% [markdown]
# At temperature 0.5 the text is made of common words and speaker names, often repeated; at 1.0 it
# has the look of a play with invented words mixed in; at 1.5 spelling falls apart. The asserts check
# the two measurable halves of that: the entropy of the distributions drawn from rises with the
# temperature, and the share of generated words that occur in the training plays falls. The sampler is our
# from-scratch GRU, which is another check that it computes what Keras trained.
#
# ## 9. LSTM and GRU on a GPU: the cuDNN path
#
# On an NVIDIA GPU, Keras runs `LSTM` and `GRU` with NVIDIA's fused cuDNN kernels, usually much
# faster than the generic loop, but only when the layer is exactly what cuDNN computes:
#
# - `activation="tanh"` and `recurrent_activation="sigmoid"` (the defaults);
# - `recurrent_dropout=0` (plain `dropout` on the inputs is fine);
# - `unroll=False` and `use_bias=True`;
# - for the GRU, `reset_after=True` (the Keras 3 default; `reset_after=False` is the older form);
# - with a mask, sequences padded at the end only (`pad_sequences(..., padding="post")`); the default
#   `padding="pre"` leaves left-padded masks that cuDNN cannot handle.
#
# With the default `use_cudnn="auto"`, breaking one of the layer's own conditions (activation,
# dropout, unrolling, bias, GRU form) silently falls back to the slow path: the model trains, just
# slower. The mask is different: Keras can only check it while the model runs, with a
# graph assertion, so inside `fit` and `predict` a left-padded mask, or a row that is all padding,
# stops training with an `InvalidArgumentError`; only a model called eagerly (`model(x)`) catches the
# error and falls back (`keras/src/backend/tensorflow/rnn.py`, `_assert_valid_mask`). On a CPU none of
# this applies: there is no cuDNN, and the generic loop handles any mask. Passing `use_cudnn=True`
# turns the silent fallback into an error, which is a cheap way to make sure a GPU model really is on
# the fast path. On a CPU there is no cuDNN, so `use_cudnn=True` raises there. The next cell checks
# that error on a CPU. On a GPU it times both paths on an `LSTM(256)` with 128 sequences of 200 steps
# (Keras compiles the generic loop with XLA there, and the cuDNN model without it) and asserts that the
# cuDNN path is faster by more than a fifth; no GPU has run that assert yet.

# %%
def lstm_training_step(use_cudnn):
    """One forward and backward pass of LSTM(256) on a batch of 128 sequences of 200 steps, as a function."""
    lstm = keras.layers.LSTM(256, use_cudnn=use_cudnn)
    model = keras.Sequential([keras.Input((200, 32)), lstm, keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    batch = np.ones((128, 200, 32), dtype="float32"), np.zeros((128, 1), dtype="float32")
    return lambda: model.train_on_batch(*batch)


# %% tags=["nbval-ignore-output"]
if gpu_available():
    lstm_times = interleaved_seconds({"cuDNN": lstm_training_step(True), "generic": lstm_training_step(False)},
                                     rounds=5)
    speed_up = paired_ratio(lstm_times, "generic", "cuDNN")
    print(f"cuDNN {1000 * np.median(lstm_times['cuDNN']):.1f} ms per batch, generic "
          f"{1000 * np.median(lstm_times['generic']):.1f} ms per batch, speed-up x{speed_up:.1f}")
    assert speed_up > 1.2, "the cuDNN path should be clearly faster"
else:
    print("No GPU: the cuDNN timing is skipped.")
    try:
        keras.layers.LSTM(8, use_cudnn=True)(np.zeros((1, 5, 2), dtype="float32"))
        cudnn_error = None
    except ValueError as error:
        cudnn_error = error
    print("LSTM(use_cudnn=True) on the CPU raises ValueError:", cudnn_error is not None)
    assert cudnn_error is not None and "cuDNN is not supported" in str(cudnn_error)

# %% [markdown]
# ## 10. Pitfalls
#
# - **Silent slow path on a GPU.** One `recurrent_dropout=0.2` or `activation="relu"` and the layer
#   falls back to the generic loop without a word. Use `use_cudnn=True` while developing on a GPU.
# - **Weights do not transfer between GRU forms.** `reset_after=True` and `reset_after=False` have
#   different bias shapes ($(2, 3H)$ against $(3H,)$) and different equations; old checkpoints from
#   TensorFlow 1 often use the second form.
# - **Gate order.** When copying weights in or out of Keras, the blocks are $[i, f, c, o]$ for the LSTM
#   and $[z, r, h]$ for the GRU; PyTorch uses $[i, f, g, o]$ and $[r, z, n]$. Both write the GRU update
#   as $h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t$; some papers and libraries swap the roles
#   of $z_t$ and $1 - z_t$. Test the copy with a forward pass, as we did.
# - **Clip anyway.** Gates address the vanishing gradient, not the exploding one. Clipping costs
#   nothing and bounds every step (chapter 2), so every optimiser in this book has `global_clipnorm=1`.
# - **Judge against the right baseline.** An adding-problem MSE of 0.16 looks like a small number; it
#   is the baseline. A language model's 3 bits per character means something only next to
#   $\log_2 V$ and the unigram model.
# - **Long plateaus are normal.** On the adding problem, the gated models can sit at the baseline for
#   several epochs before the loss drops. Stopping after one or two epochs would wrongly conclude
#   that they fail too.

# %% [markdown]
# ## 11. Summary
#
# - Long dependencies need a memory that is kept by default; a `SimpleRNN` rewrites its state at every
#   step, and its gradient is a product of Jacobians that vanishes with the distance.
# - The LSTM keeps a cell state $c_t = f_t \odot c_{t-1} + i_t \odot g_t$; along it the gradient is
#   multiplied only by the forget gate, so it survives when $f \approx 1$.
# - The GRU does the same with one state and two gates: $h_t = z_t \odot h_{t-1} + (1 - z_t) \odot
#   \tilde h_t$; Keras 3 uses the `reset_after=True` form, with a $(2, 3H)$ bias.
# - Parameters: $H(D+H+1)$ for a `SimpleRNN`, $4H(D+H+1)$ for an LSTM, $3H(D+H+2)$ for a Keras GRU.
# - Our NumPy cells matched Keras exactly; with trained weights they showed the LSTM's cell state
#   jumping at the markers and resting in between.
# - On the adding problem with $T = 100$, LSTM and GRU solved the task while a `SimpleRNN` stayed at the
#   trivial baseline; a small GRU language model beat both the uniform and the unigram baselines on an
#   unseen play.
# - On a GPU, keep the defaults to stay on the cuDNN path, and use `use_cudnn=True` to be sure.

# %% [markdown]
# ## 12. Exercises
#
# 1. **Count by hand.** How many parameters have `LSTM(64)` and `GRU(64)` reading 300-dimensional word
#    vectors? Check with `count_params`.
# 2. **The other GRU.** With `reset_after=False`, the reset gate acts before the recurrent product:
#    $\tilde h_t = \tanh(x_t W_h + (r_t \odot h_{t-1}) U_h + b_h)$, and there is a single bias of shape
#    $(3H,)$. Write the step and check it against `keras.layers.GRU(..., reset_after=False)`. What is
#    its parameter count?
# 3. **The forget-gate bias.** Check that a fresh Keras LSTM starts with $b_f = 1$ and all other biases
#    at 0. Why is 1 a better start than 0 for long memory?
# 4. **Temperature and entropy.** For the prompt "\n\nHam.\n", compute the entropy (in bits) of the
#    model's next-character distribution at temperatures 0.5, 1 and 1.5. How does it change?

# %% tags=["solution"]
# Exercise 1: write your answer where the solution markers are.
### BEGIN SOLUTION
# LSTM 4H(D+H+1), Keras GRU 3H(D+H+2), with H = 64 and D = 300.
by_hand = {"LSTM": 4 * 64 * (300 + 64 + 1), "GRU": 3 * 64 * (300 + 64 + 2)}
### END SOLUTION

# %% tags=["check"]
for name, count in by_hand.items():
    by_keras = keras.Sequential([keras.Input((None, 300)), layer_types[name](64)]).count_params()
    print(f"{name}: by hand {count}, count_params {by_keras}")
    assert count == by_keras

# %% tags=["solution"]
# Exercise 2: write your answer where the solution markers are.
def gru_step_reset_before(x, h, kernel, recurrent_kernel, bias):
    ### BEGIN SOLUTION
    # the reset_after=False GRU, 3H(D+H+1) parameters.
    x_z, x_r, x_h = np.split(x @ kernel + bias, 3, axis=-1)
    recurrent_z, recurrent_r, recurrent_h = np.split(recurrent_kernel, 3, axis=-1)
    update_gate, reset_gate = sigmoid(x_z + h @ recurrent_z), sigmoid(x_r + h @ recurrent_r)
    candidate = np.tanh(x_h + (reset_gate * h) @ recurrent_h)
    return update_gate * h + (1 - update_gate) * candidate
    ### END SOLUTION


# %% tags=["check"]
old_gru = keras.layers.GRU(hidden_size, reset_after=False, return_sequences=True)
old_states_keras = old_gru(sequences)
old_bias = old_gru.get_weights()[2]
old_state, old_states_numpy = np.zeros((len(sequences), hidden_size)), []
for t in range(sequences.shape[1]):
    old_state = gru_step_reset_before(sequences[:, t].astype("float64"), old_state, *old_gru.get_weights())
    old_states_numpy.append(old_state)
print("bias shape", old_bias.shape, "| parameters", old_gru.count_params(),
      "| agrees:", np.allclose(np.stack(old_states_numpy, axis=1), old_states_keras, rtol=1e-5, atol=1e-6))
assert old_gru.count_params() == 3 * hidden_size * (num_features + hidden_size + 1)
assert np.allclose(np.stack(old_states_numpy, axis=1), old_states_keras, rtol=1e-5, atol=1e-6)

# %% tags=["solution"]
# Exercise 3: write your answer where the solution markers are.
fresh_lstm = keras.layers.LSTM(hidden_size)
fresh_lstm(sequences)
### BEGIN SOLUTION
# Keras's unit_forget_bias=True sets the forget block [H:2H] of the bias to 1.
fresh_bias = fresh_lstm.get_weights()[2].reshape(4, hidden_size)  # rows: i, f, c, o
# With b_f = 1 the forget gate starts near 0.73 instead of 0.5: after 20 steps 0.73**20 ≈ 0.002 of a
# stored value survives instead of 0.5**20 ≈ 1e-6, so early gradients reach further back.
### END SOLUTION

# %% tags=["check"]
print(dict(zip(["input", "forget", "candidate", "output"], fresh_bias[:, 0].tolist(), strict=True)))
assert fresh_bias.shape == (4, hidden_size)
assert np.all(fresh_bias[1] == 1) and np.all(fresh_bias[[0, 2, 3]] == 0)

# %% tags=["solution"]
# Exercise 4: write your answer where the solution markers are.
prompt_ids = np.array([[char_to_id[char] for char in "\n\nHam.\n"]])
last_logits = char_model.predict(prompt_ids, verbose=0)[0, -1]
### BEGIN SOLUTION
# the entropy of the next-character distribution falls as the temperature falls.
entropy_at = {}
for temperature in (0.5, 1.0, 1.5):
    probabilities = np.exp((last_logits - last_logits.max()) / temperature)
    probabilities /= probabilities.sum()
    entropy_at[temperature] = -(probabilities * np.log2(probabilities + 1e-12)).sum()
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
for temperature, entropy in entropy_at.items():
    print(f"temperature {temperature}: entropy {entropy:.2f} bits")
assert sorted(entropy_at) == [0.5, 1.0, 1.5]
assert entropy_at[0.5] < entropy_at[1.0] < entropy_at[1.5]
