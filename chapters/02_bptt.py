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
# # Chapter 2 — Training RNNs: backpropagation through time and the gradient problem
#
# A recurrent network is trained like any other network: compute a loss, take its gradient, step
# downhill. The only new idea is how to take the gradient through a loop, and it fits on one page:
# unroll the loop in time and run ordinary backpropagation on the unrolled graph. In this chapter we
# derive that algorithm, *[backpropagation through time](glossary.md#backpropagation-through-time)*
# (BPTT), write it in twenty lines of NumPy, and prove that it matches TensorFlow's automatic
# differentiation to within $10^{-12}$ in float64. Then we use it as a microscope: we watch gradients
# shrink or blow up exponentially with the time lag, see what that does to learning, and meet the
# standard tools: [gradient clipping](glossary.md#gradient-clipping) against explosions,
# [truncated BPTT](glossary.md#truncated-backpropagation-through-time) against the cost of long
# sequences, and (next chapter) gated cells against [vanishing](glossary.md#vanishing-gradient).
#
# **Learning objectives.** After this chapter you can
# - explain why an unrolled RNN is a deep feedforward network with shared weights, and why the loss at
#   step $t$ depends on every earlier step;
# - derive BPTT for a simple RNN and implement it by hand, checked against `tf.GradientTape` and
#   finite differences;
# - predict from the recurrent matrix whether gradients vanish or explode, and measure it;
# - recognise vanishing gradients (a task that stays at chance) and
#   [exploding gradients](glossary.md#exploding-gradient) (a loss that jumps to NaN), and fix the
#   latter with `clipnorm` / `global_clipnorm`;
# - train on long streams with truncated BPTT while carrying the state, and say which dependencies it
#   can and cannot learn;
# - measure how the time of BPTT grows with the sequence length, and say why its memory grows too.
#
# **Prerequisites.** Chapter 1 (the recurrence $h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$ and
# Keras's `SimpleRNN`), the chain rule, and matrix products.
#
# **Run time.** A few minutes at most on a 2-core CPU (the README's table has the measured time). GPU: not
# measured; with models this small and a time loop that runs step by step, expect no speed-up.

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
import time
from functools import partial

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from utils.book import EpochLogger, gpu_available, setup_book
from utils.diagrams import draw_unrolled_bptt
from utils.measure import interleaved_seconds, linear_fit, paired_ratio
from utils.plots import plot_learning_curves
from utils.tasks import build_recall_model, make_recall_task

seed = setup_book()

# %% [markdown]
# ## 1. Unrolling: an RNN is a deep network with shared weights
#
# A simple RNN reads a sequence $x_1, \dots, x_T$ and updates a hidden state, starting from
# $h_0 = 0$; a linear read-out predicts a target at every step:
#
# $$a_t = x_t W_{xh} + h_{t-1} W_{hh} + b_h, \qquad h_t = \tanh(a_t), \qquad y_t = h_t W_{hy} + b_y.$$
#
# Write the loop out for $T$ steps and it becomes a feedforward network with $T$ hidden layers. Two
# things are unusual about this deep network: every layer uses the **same** weights
# $W_{xh}, W_{hh}, b_h$, and every layer receives an input and produces an output. The loss is the
# mean of the per-step losses, here the squared error against a target $y^*_t$:
#
# $$L = \frac{1}{T}\sum_{t=1}^{T} \ell_t, \qquad \ell_t = \operatorname{mean}\,(y_t - y^*_t)^2
# \quad\text{(the mean over the batch and the output units)}.$$
#
# Because $h_t$ depends on $h_{t-1}$, which depends on $h_{t-2}$, and so on, the error $\ell_t$ depends
# on **every** input $x_1, \dots, x_t$ and on every copy of the weights before step $t$. The picture
# below is the unrolled graph: black arrows are the forward pass, red arrows show where the gradient
# of a single loss $\ell_3$ has to travel.

# %%
draw_unrolled_bptt(plt.figure(figsize=(7, 3.4)).gca())
plt.show()

# %% [markdown]
# Let us measure the dependency instead of drawing it. We take an untrained `SimpleRNN`, feed it 64
# random sequences of 20 steps, and ask TensorFlow for every derivative $\partial \ell_t / \partial x_k$
# (averaged in absolute value over the sequences).
# Look for two things in the heat map: the upper triangle ($k > t$) must be exactly zero, since the
# future cannot influence the past, and the lower triangle gets darker away from the diagonal on average
# (smaller derivatives): old inputs have a weaker say in the present.

# %%
seq_len = 20
sensitivity_model = keras.Sequential(
    [
        keras.Input((seq_len, 1)),
        keras.layers.SimpleRNN(16, return_sequences=True),
        keras.layers.Dense(1),
    ]
)
x_random = tf.constant(
    np.random.default_rng(seed).normal(size=(64, seq_len, 1)), dtype="float32"
)
# the CPU: where "exactly zero" is exact on any machine
with tf.device("/CPU:0"), tf.GradientTape() as tape:
    tape.watch(x_random)
    # ℓ_t, target 0, summed
    step_losses = keras.ops.sum(sensitivity_model(x_random)[:, :, 0] ** 2, axis=0)
# [t, sequence, k]: sequences are independent
jacobian = tape.jacobian(step_losses, x_random)[..., 0].numpy()
sensitivity = np.abs(jacobian).mean(axis=1)  # [t, k] = mean |dℓ_t / dx_k|
future_entries = sensitivity[np.triu_indices(seq_len, k=1)]
print("sensitivity matrix shape:", sensitivity.shape)
print("nonzero entries with k > t (the future):", int(np.count_nonzero(future_entries)))
assert np.count_nonzero(future_entries) == 0, (
    "no loss depends on a later input: every entry with k > t is exactly zero"
)
log_sensitivity_by_lag = [
    np.log(np.diagonal(sensitivity, offset=-lag)).mean() for lag in range(seq_len)
]
assert np.polyfit(np.arange(seq_len), log_sensitivity_by_lag, 1)[0] < -0.02, (
    "older inputs count less, on average"
)

# %%
masked = np.ma.masked_where(
    np.triu(np.ones((seq_len, seq_len)), k=1) == 1, np.abs(sensitivity) + 1e-12
)
plt.imshow(np.log10(masked), origin="lower")
plt.colorbar(label="log10 mean |dℓ_t / dx_k|")
plt.xticks(range(0, seq_len, 2))
plt.yticks(range(0, seq_len, 2))
plt.xlabel("input step k")
plt.ylabel("loss step t")
plt.title("Each loss depends on every earlier input")
plt.plot(
    [], [], "s", color="w", markeredgecolor="k", label="white: k > t, exactly zero"
)
plt.legend(loc="lower right")
plt.show()

# %% [markdown]
# Every row $t$ is coloured up to the diagonal and blank beyond it: $\ell_t$ depends on all inputs up
# to step $t$ and on none after it. Away from the diagonal the colour darkens: averaged over the rows,
# the log-sensitivity falls with the lag $t - k$ (asserted above; a single row can rise and fall). It is
# a first sign of the gradient decay we study in section 5.
#
# ## 2. Backpropagation through time, derived
#
# Since the unrolled RNN is an ordinary feedforward graph, its gradient is ordinary backpropagation:
# walk the graph backwards from the loss, multiplying local derivatives (Werbos, 1990, is the classic
# account). We use row vectors (one row
# per sequence in the batch), as Keras does, and write $\delta z = \partial L / \partial z$ for the
# gradient of the loss with respect to any intermediate quantity $z$.
#
# **Output.** With $N$ the number of entries of $y$ (batch × time × outputs), the mean squared error
# gives $\delta y_t = \tfrac{2}{N}(y_t - y^*_t)$, and the read-out layer collects
#
# $$\delta W_{hy} = \sum_t h_t^\top \delta y_t, \qquad \delta b_y = \sum_t \mathbf 1^\top \delta y_t.$$
#
# **The state, the heart of BPTT.** $h_t$ influences the loss along two paths: through its own output
# $y_t$, and through the next state $h_{t+1}$ (which carries it to all later losses). So
#
# $$\delta h_t = \delta y_t\, W_{hy}^\top + \delta a_{t+1}\, W_{hh}^\top, \qquad
# \delta a_t = \delta h_t \odot (1 - h_t^2), \qquad \delta a_{T+1} = 0.$$
#
# The second equation is the derivative of $\tanh$. Computing $\delta h_t$ needs $\delta a_{t+1}$, so the
# loop must run **backwards**, from $t = T$ down to $t = 1$: that is the "through time" in the name.
#
# **Shared weights.** Each time step holds a copy of $W_{xh}, W_{hh}, b_h$; the gradient of a shared
# weight is the sum of the gradients of its copies:
#
# $$\delta W_{xh} = \sum_{t=1}^{T} x_t^\top \delta a_t, \qquad
# \delta W_{hh} = \sum_{t=1}^{T} h_{t-1}^\top \delta a_t, \qquad
# \delta b_h = \sum_{t=1}^{T} \mathbf 1^\top \delta a_t.$$
#
# The forward pass must therefore keep every $h_t$ (and $x_t$): memory grows with $T$.
#
# ## 3. BPTT by hand in NumPy
#
# First the parameters (named as in the equations) and the forward pass, which caches what the
# backward pass needs.


# %%
def init_params(rng, input_size, hidden_size, output_size):
    """Small random weights for the simple RNN and its linear read-out."""
    return {
        "W_xh": rng.normal(0, 0.5, (input_size, hidden_size)),
        "W_hh": rng.normal(0, 0.5 / np.sqrt(hidden_size), (hidden_size, hidden_size)),
        "b_h": np.zeros(hidden_size),
        "W_hy": rng.normal(0, 0.5, (hidden_size, output_size)),
        "b_y": np.zeros(output_size),
    }


def rnn_forward(params, x, targets):
    """Run the RNN over x (batch, time, features); return the MSE loss and a cache for
    backward."""
    h = np.zeros((x.shape[0], params["W_hh"].shape[0]))
    states, outputs = [h], []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ params["W_xh"] + h @ params["W_hh"] + params["b_h"])
        states.append(h)  # states[t + 1] is h_t; states[0] is h_0 = 0
        outputs.append(h @ params["W_hy"] + params["b_y"])
    y = np.stack(outputs, axis=1)
    return np.mean((y - targets) ** 2), {
        "x": x,
        "states": states,
        "y": y,
        "targets": targets,
    }


# %% [markdown]
# The backward pass is the equations above, line by line, in a loop from the last step to the first.


# %%
def rnn_backward(params, cache):
    """Backpropagation through time: the gradient of the loss for every parameter."""
    x, states, y = cache["x"], cache["states"], cache["y"]
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dy = 2 * (y - cache["targets"]) / y.size
    # δa_{T+1} = 0: nothing comes from after the last step
    da_next = np.zeros_like(states[0])
    for t in reversed(range(x.shape[1])):
        h, h_prev = states[t + 1], states[t]
        grads["W_hy"] += h.T @ dy[:, t]
        grads["b_y"] += dy[:, t].sum(axis=0)
        # two paths out of h_t
        dh = dy[:, t] @ params["W_hy"].T + da_next @ params["W_hh"].T
        da = dh * (1 - h**2)  # through tanh
        grads["W_xh"] += x[:, t].T @ da
        grads["W_hh"] += h_prev.T @ da
        grads["b_h"] += da.sum(axis=0)
        da_next = da
    return grads


# %% [markdown]
# We try it on a small random problem: 4 sequences of 12 steps, 3 input features, 8 hidden units,
# 2 outputs. The gradients must have exactly the shapes of the parameters.

# %%
batch_size, seq_len, input_size, hidden_size, output_size = 4, 12, 3, 8, 2
rng = np.random.default_rng(seed)
params = init_params(rng, input_size, hidden_size, output_size)
x_small = rng.normal(size=(batch_size, seq_len, input_size))
targets_small = rng.normal(size=(batch_size, seq_len, output_size))

loss, cache = rnn_forward(params, x_small, targets_small)
grads = rnn_backward(params, cache)
for name in params:
    print(
        f"{name:5s} parameter {str(params[name].shape):8s} gradient {grads[name].shape}"
    )

# %% [markdown]
# ## 4. Keras agrees: the same gradients from `tf.GradientTape`
#
# Now the same network in Keras: a `SimpleRNN` that returns the whole sequence, followed by a `Dense`
# read-out. Keras stores the `SimpleRNN` weights as `[kernel, recurrent_kernel, bias]`, which are our
# $W_{xh}, W_{hh}, b_h$, and the `Dense` weights as $W_{hy}, b_y$. We build it in float64 so that the
# comparison is limited by nothing but rounding in the last digits (in float32 they still agree to a
# few times $10^{-7}$, the float32 precision).

# %%
inputs = keras.Input((seq_len, input_size), dtype="float64")
hidden = keras.layers.SimpleRNN(hidden_size, return_sequences=True, dtype="float64")(
    inputs
)
outputs = keras.layers.Dense(output_size, dtype="float64")(hidden)
keras_rnn = keras.Model(inputs, outputs)
keras_rnn.set_weights([params[name] for name in ("W_xh", "W_hh", "b_h", "W_hy", "b_y")])

with tf.GradientTape() as tape:
    keras_loss = keras.ops.mean((keras_rnn(x_small) - targets_small) ** 2)
tape_grads = tape.gradient(keras_loss, keras_rnn.trainable_weights)
print("same loss:", np.isclose(float(keras_loss), loss, rtol=1e-12, atol=0))

# %% [markdown]
# For each parameter we compute the largest difference relative to the largest gradient entry. Look
# for values near $10^{-16}$, the float64 machine precision; the assert allows up to $10^{-12}$.

# %%
relative_errors = {}
names = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")
for name, weight, tape_grad in zip(
    names, keras_rnn.trainable_weights, tape_grads, strict=True
):
    tape_grad = tape_grad.numpy()
    relative_errors[name] = np.max(np.abs(tape_grad - grads[name])) / np.max(
        np.abs(tape_grad)
    )
    print(
        f"{name:5s} = {weight.path:40s} agrees to 1e-12:"
        f" {relative_errors[name] < 1e-12}"
    )
assert max(relative_errors.values()) < 1e-12, (
    "the NumPy BPTT gradients equal the tape's, within 1e-12 of the largest entry"
)

# %% [markdown]
# Autodiff is itself code that could be wrong (or used wrongly), so we add an independent check that
# needs nothing but the forward pass: the central finite difference
# $\partial L/\partial\theta \approx \frac{L(\theta + \varepsilon) - L(\theta - \varepsilon)}{2\varepsilon}$
# on a few entries of each weight matrix.


# %%
def finite_difference(params, name, index, x, targets, eps=1e-6):
    """Central difference of the loss with respect to one entry params[name][index]."""
    shifted = {key: value.copy() for key, value in params.items()}
    shifted[name][index] += eps
    loss_plus, _ = rnn_forward(shifted, x, targets)
    shifted[name][index] -= 2 * eps
    loss_minus, _ = rnn_forward(shifted, x, targets)
    return (loss_plus - loss_minus) / (2 * eps)


checks = [
    ("W_xh", (2, 5)),
    ("W_hh", (0, 1)),
    ("W_hh", (7, 3)),
    ("b_h", (4,)),
    ("W_hy", (6, 1)),
]
for name, index in checks:
    numeric = finite_difference(params, name, index, x_small, targets_small)
    agree = np.isclose(numeric, grads[name][index], rtol=1e-7, atol=1e-10)
    print(f"d loss / d {name}{list(index)}: BPTT and finite difference agree: {agree}")
    assert agree, (
        "BPTT agrees with the central finite difference to about seven significant"
        " digits"
    )

# %% [markdown]
# All five entries agree to seven significant digits or better (a central difference in float64 with the
# best step, about $10^{-5}$, can reach about ten). Together with the exact match with
# `tf.GradientTape`, this is as strong a proof as code can give that the twenty lines of `rnn_backward`
# compute the gradient.
#
# ## 5. Why gradients vanish or explode
#
# Hochreiter (1991) and Bengio, Simard & Frasconi (1994) found why RNNs trained with BPTT fail to learn
# long dependencies. Follow the gradient of a loss that only looks at the last state, $\delta h_T$, back
# to an earlier state $h_t$. Each step back applies the same two operations as the loop above,
# $\delta h_{s-1} = (\delta h_s \odot (1 - h_s^2))\, W_{hh}^\top$, so after a lag of $T - t$ steps
#
# $$\delta h_t = \delta h_T \prod_{s=T}^{t+1} \operatorname{diag}(1 - h_s^2)\, W_{hh}^\top .$$
#
# The factors $1 - h_s^2$ are at most 1, and equal to 1 only where $h_s = 0$. In the linear regime
# ($h \approx 0$) the product behaves like a power of $W_{hh}$, and two numbers of that matrix matter.
# Its largest [singular value](glossary.md#singular-value) $\sigma_{\max}$ bounds what one step can do,
# $\lVert \delta h\, W_{hh}^\top \rVert \le \sigma_{\max} \lVert \delta h \rVert$; since
# $\tanh' \le 1$, $\sigma_{\max} < 1$ is *sufficient* for vanishing, and $\sigma_{\max} > 1$ is
# *necessary* for explosion (Pascanu, Mikolov & Bengio, 2013). Its
# [spectral radius](glossary.md#spectral-radius) $\rho$ (the largest absolute eigenvalue) sets the
# long-run rate, $\lVert W_{hh}^n \rVert^{1/n} \to \rho$: over many steps the norm changes by a
# factor of about $\rho$ per step, so its logarithm is a straight line in the lag with slope $\ln\rho$.
# Since $\rho \le \sigma_{\max}$, a matrix can have $\rho < 1 < \sigma_{\max}$: then a gradient can
# grow for a few steps before the decay wins. Saturated units ($|h| \to 1$) multiply by almost zero,
# which pulls every slope down.
#
# The experiment: one random $64 \times 64$ matrix rescaled to four spectral radii, driven by small
# random inputs (so the states start near the linear regime), and the gradient of the loss read-out
# carried back 60 steps. The function below is the same backward line as in `rnn_backward`.


# %%
def gradient_norm_by_lag(W_hh, W_xh, x, dh_last):
    """Norm of δh_t for lag T - t = 0, 1, ..., T-1 (a loss on h_T only); shape
    (T, batch)."""
    states = [np.zeros((x.shape[0], W_hh.shape[0]))]
    for t in range(x.shape[1]):
        states.append(np.tanh(x[:, t] @ W_xh + states[-1] @ W_hh))
    dh, norms = dh_last, []
    for t in range(x.shape[1], 0, -1):
        norms.append(np.linalg.norm(dh, axis=1))
        dh = (dh * (1 - states[t] ** 2)) @ W_hh.T  # one Jacobian: diag(1 - h_t²) W_hh^T
    return np.array(norms)


# %%
rng = np.random.default_rng(seed)
hidden_size, seq_len, batch_size = 64, 60, 32
direction = rng.normal(size=(hidden_size, hidden_size))
direction /= np.max(np.abs(np.linalg.eigvals(direction)))  # spectral radius exactly 1
W_xh = rng.normal(0, 0.1, (1, hidden_size))
x_drive = rng.normal(size=(batch_size, seq_len, 1))
readout = rng.normal(size=(1, hidden_size)) / np.sqrt(hidden_size)
dh_last = np.repeat(readout, batch_size, axis=0)  # δh_T for the loss L = h_T · readout

radii = (0.5, 1.0, 1.5, 3.0)
lags = np.arange(seq_len)
log_norms = {
    rho: (
        np.log(gradient_norm_by_lag(rho * direction, W_xh, x_drive, dh_last)).mean(
            axis=1
        )
    )
    for rho in radii
}
slopes = {rho: np.polyfit(lags, log_norms[rho], 1)[0] for rho in radii}

# %%
for rho in radii:
    relative_norm = np.exp(log_norms[rho] - log_norms[rho][0])
    plt.semilogy(
        lags, relative_norm, label=f"ρ = {rho} (slope {slopes[rho]:+.2f} per step)"
    )
plt.xlabel("lag T - t (time steps)")
plt.ylabel("‖δh_t‖ / ‖δh_T‖ (log scale)")
plt.title("Gradient norm against the time lag (mean of 32 sequences)")
plt.legend()
plt.show()

# %% [markdown]
# On the log scale each curve is roughly a straight line: the gradient changes by a roughly constant
# factor per step. (Where a curve bends, and in which direction, depends on the draw of the matrix and
# the inputs; we assert nothing about the bends.) We fit the slope (natural log per step) and compare
# it with the linear-regime prediction $\ln\rho$.

# %% tags=["nbval-ignore-output"]
for rho in radii:
    print(
        f"rho {rho:3.1f}: fitted slope {slopes[rho]:+.3f} per step, ln(rho) ="
        f" {np.log(rho):+.3f}, factor over 60 steps {np.exp(slopes[rho] * seq_len):.1e}"
    )
# exponential decay, at the predicted rate
assert slopes[0.5] < -0.5 and abs(slopes[0.5] - np.log(0.5)) < 0.15, (
    "at ρ = 0.5 the gradient decays, its slope within 0.15 of ln 0.5"
)
assert -0.15 < slopes[1.0] < 0, (  # at 1: a slow decay, not preservation
    "at ρ = 1 the gradient still decays, slowly: a slope between -0.15 and 0"
)
assert slopes[1.5] < np.log(1.5) / 4, (  # saturation eats most of the growth
    "at ρ = 1.5 the slope is below a quarter of ln 1.5"
)
assert slopes[3.0] > 0.05, (  # well above 1: exponential growth
    "at ρ = 3 the gradient grows with the lag, slope above 0.05 per step"
)

# %% [markdown]
# With $\rho = 0.5$ the fitted slope is close to $\ln 0.5 \approx -0.69$: the gradient halves at every
# step and is negligible after twenty. At $\rho = 1$ it still decays, slowly (by the factor printed
# above), partly because $1 - h^2 < 1$ and partly because most of the matrix's eigenvalues lie well
# inside the unit circle, so the gradient's components along them die out while the largest one takes
# over (exercise 2 isolates this part, without tanh): a radius of 1 is the border between the two
# regimes, not a guarantee that the gradient survives. Above 1 the state grows until tanh saturates, and
# saturation eats most of the growth: at $\rho = 1.5$ the slope is far below $\ln 1.5 \approx 0.41$, and
# only the strongly amplifying $\rho = 3$ explodes clearly. Unbounded activations such as ReLU have no
# such brake, which is why section 7 uses one to show an explosion.
#
# The radius is the long-run rate only. The same random matrix scaled to $\rho = 0.9$ has a largest
# singular value above 1, so the norm of its powers, the most that $n$ linear steps can stretch a
# gradient, stays above 1 for the first several steps and only then decays like $0.9^n$:

# %% tags=["nbval-ignore-output"]
contracting = 0.9 * direction
power_norms = np.array(
    [
        np.linalg.norm(np.linalg.matrix_power(contracting, n), 2)
        for n in range(1, seq_len + 1)
    ]
)
print(
    f"rho 0.9: largest singular value {power_norms[0]:.2f}; the norm of W^n peaks at"
    f" {power_norms.max():.2f} (n = {power_norms.argmax() + 1}), stays above 1 for"
    f" {np.sum(power_norms > 1)} steps and is {power_norms[-1]:.1e} at n = {seq_len}"
)
assert np.all(power_norms[:4] > 1) and power_norms[-1] < 0.05, (
    "at ρ = 0.9 the norm of W^n stays above 1 for n = 1 to 4"
    " and is below 0.05 at n = 60"
)

# %%
steps_n = np.arange(1, seq_len + 1)
plt.semilogy(
    steps_n, power_norms, label="‖W^n‖ (largest singular value of the n-th power)"
)
plt.semilogy(steps_n, 0.9**steps_n, "--", label="ρ^n = 0.9^n")
plt.axhline(1.0, color="k", linestyle=":")
plt.xlabel("number of steps n")
plt.ylabel("‖W^n‖ (log scale)")
plt.title("ρ = 0.9 < 1, yet a gradient can first grow")
plt.legend()
plt.show()

# %% [markdown]
# So the two numbers answer different questions. The largest singular value bounds what any single
# step can do to a gradient, which is why Pascanu et al. state their conditions with it ($\sigma_{\max}
# > 1$ is necessary for explosion); in the linear regime the radius sets the long-run rate. With tanh,
# saturation can stop the growth even when $\rho > 1$, as the $\rho = 1.5$ curve above shows.
#
# ## 6. What vanishing gradients do to learning
#
# A task that needs one bit of memory at a controllable distance. Each step of the input has two
# channels. The first is zero everywhere except at step $T - \text{lag}$, where it holds a random sign
# $\pm 1$: the bit to remember. The second holds a random sign at every step: noise the network must
# learn to ignore. The label says whether the bit was $+1$. The bit marks its own position, so the
# network only has to notice it, keep one number and ignore the noise; nothing has to count steps.
# Both versions have the same length, $T = 90$, and cost the same to train; only the lag differs.
# `utils/tasks.py` makes the data (`make_recall_task`) and the model (`build_recall_model`: a recurrent
# layer of 32 units, a sigmoid readout of its last state, Adam at $3 \cdot 10^{-3}$ with the gradient
# clipped to norm 1, a safeguard against gradient spikes that section 7 explains, for Adam too), since
# chapter 3 reruns the task.

# %% [markdown]
# First, is one bit over 80 steps within the reach of a `SimpleRNN(32)` at all? We set its weights by
# hand: unit 0 reads the bit channel with weight 2 and feeds itself back with weight 2, so a $+1$ puts
# it at $\tanh 2 \approx 0.96$, where $\tanh(2 \cdot 0.96)$ is again about 0.96 (a $-1$ likewise at
# $-0.96$); every other weight is zero, and the readout looks at unit 0 alone.

# %% tags=["nbval-ignore-output"]
seq_len, short_lag, long_lag = 90, 5, 80
rng = np.random.default_rng(seed)
x_check, y_check = make_recall_task(rng, 1000, seq_len, long_lag)
by_hand = build_recall_model(seq_len)
kernel, recurrent_kernel, bias = (
    np.zeros_like(w) for w in by_hand.layers[0].get_weights()
)
# write the bit into unit 0, and keep it there
kernel[0, 0], recurrent_kernel[0, 0] = (2.0, 2.0)
by_hand.layers[0].set_weights([kernel, recurrent_kernel, bias])
by_hand.layers[1].set_weights(
    [np.eye(32, 1, dtype="float32") * 10, np.zeros(1, "float32")]
)
hand_accuracy = float(by_hand.evaluate(x_check, y_check, verbose=0)[1])
print(f"hand-set SimpleRNN(32), lag {long_lag}: accuracy {hand_accuracy:.3f}")
assert hand_accuracy == 1.0, (
    "the hand-set SimpleRNN(32) recalls the bit at lag 80 on every test sequence"
)

# %% [markdown]
# So the capacity is there: one unit, two weights. Now look at what holding costs the gradient. The
# unit keeps its sign because it sits at a stable fixed point, $h^* = \tanh(2h^*) \approx 0.96$, where
# the slope of its update, $\partial h_t / \partial h_{t-1} = 2(1 - h_t^2)$, is well below 1: a small
# disturbance (from a rounding error, or from noise a trained network lets in) shrinks at every step,
# which is what makes the bit safe. The gradient travels back through the same slope, once per step.

# %%
latch_state, latch_slopes = np.tanh(2.0), []  # the +1 bit has just been written
for _ in range(long_lag - 1):  # the steps from the bit to the end
    latch_state = np.tanh(2.0 * latch_state)
    latch_slopes.append(2.0 * (1 - latch_state**2))
latch_gradient = np.prod(latch_slopes)
print(
    f"slope per step at the end {latch_slopes[-1]:.3f}; product over"
    f" {len(latch_slopes)} steps {latch_gradient:.1e}"
)
# arithmetic on fixed weights: keeps the prose's bounds true
assert latch_slopes[-1] < 0.2 and latch_gradient < 1e-50, (
    "the latch passes back under 1e-50 of the gradient"
)

# %% [markdown]
# The latch that holds the bit perfectly passes back less than $10^{-50}$ of the gradient (the product
# is printed above). This is the dilemma Bengio, Simard & Frasconi (1994) proved in general: a state
# that stores information robustly (its slope below 1, so disturbances die out) is one through which the
# gradient vanishes, and a slope above 1, which would carry the gradient, lets disturbances grow. Whether
# training *finds* such weights is therefore another matter. We
# take an untrained model and measure how strongly the loss gradient reaches the bit channel at each
# position, $\lVert \partial L / \partial x_t \rVert$ (root mean square over 256 sequences).

# %%
x_probe, y_probe = (
    tf.constant(array) for array in make_recall_task(rng, 256, seq_len, long_lag)
)
untrained = build_recall_model(seq_len)
with tf.GradientTape() as tape:
    tape.watch(x_probe)
    probe_loss = keras.ops.mean(
        keras.losses.binary_crossentropy(y_probe[:, None], untrained(x_probe))
    )
input_grad = np.sqrt(
    np.mean(tape.gradient(probe_loss, x_probe).numpy()[:, :, 0] ** 2, axis=0)
)

# %%
plt.semilogy(np.arange(seq_len), input_grad, label="untrained SimpleRNN(32)")
for lag, color in ((short_lag, "C2"), (long_lag, "C3")):
    plt.axvline(
        seq_len - lag, color=color, linestyle="--", label=f"where the bit is, lag {lag}"
    )
plt.xlabel("input position t (time step)")
plt.ylabel("RMS of dL/dx_t (bit channel)")
plt.title("How much gradient reaches each input")
plt.legend()
plt.show()

# %% tags=["nbval-ignore-output"]
reach = input_grad[seq_len - long_lag] / input_grad[seq_len - short_lag]
print(f"gradient at lag {long_lag} / gradient at lag {short_lag}: {reach:.1e}")
assert reach < 1e-3, (
    "the gradient reaching lag 80 is over a thousand times smaller than at lag 5"
)

# %% [markdown]
# The gradient that reaches the input 80 steps back is over a thousand times smaller than the one
# that reaches 5 steps back (the ratio is printed above; asserted). Now we train the two models, 8
# epochs each on 4,000 sequences.

# %% tags=["nbval-ignore-output"]
lag_histories = {}
for lag in (short_lag, long_lag):
    x_train, y_train = make_recall_task(rng, 4000, seq_len, lag)
    x_valid, y_valid = make_recall_task(rng, 1000, seq_len, lag)
    logger = EpochLogger(every=4, name=f"lag {lag}")
    lag_histories[f"lag {lag}"] = build_recall_model(seq_len).fit(
        x_train,
        y_train,
        validation_data=(x_valid, y_valid),
        epochs=8,
        batch_size=64,
        verbose=0,
        callbacks=[logger],
    )

# %% tags=["nbval-ignore-output"]
plot_learning_curves(
    lag_histories,
    metric="accuracy",
    title="SimpleRNN(32): recall a bit 5 or 80 steps back",
)
plt.ylabel("accuracy (chance = 0.5)")
plt.show()
short_accuracy = np.array(lag_histories[f"lag {short_lag}"].history["val_accuracy"])
long_accuracy = np.array(lag_histories[f"lag {long_lag}"].history["val_accuracy"])
print(
    f"validation accuracy per epoch: lag {short_lag} {np.round(short_accuracy, 3)}, "
    f"lag {long_lag} {np.round(long_accuracy, 3)}"
)
# lag 5: learned in the first epoch
assert short_accuracy[0] > 0.95 and short_accuracy[-1] > 0.95, (
    "lag 5 is learned within the first epoch (above 0.95) and still at the last"
)
assert abs(long_accuracy[0] - 0.5) < 0.1, (  # lag 80: at chance after the first epoch
    "after the first epoch, lag 80 is at chance (within 0.1 of one half)"
)

# %% [markdown]
# The short lag is solved within the first epoch; after that epoch, lag 80 is at chance (both
# asserted). Within eight epochs, on some seeds, the lag-80 run finds the latch later, in a sudden
# jump, at an epoch no one can predict, and may lose part of it again (the mixed-lag run below shows
# such a jump). That unpredictability is itself the symptom. Same task, same network, same data size;
# the hand-set weights show that one unit can hold the bit. What differs is the gradient: the signal
# that would teach the network to keep the bit for 80 steps arrives over a thousand times weaker than
# at 5 steps.
#
# Two more runs show what this does and does not mean. First, the same `SimpleRNN` trained on a mix,
# for eight epochs: every training sequence has its bit at a random lag from 1 to 80, and we measure it
# at lag 80 only.
# Second, an LSTM, the gated cell of chapter 3 (for now a drop-in replacement for `SimpleRNN` with a
# memory designed to last), trained on lag 80 alone.

# %% tags=["nbval-ignore-output"]
x_mixed, y_mixed = make_recall_task(
    rng, 4000, seq_len, lag=rng.integers(1, long_lag + 1, size=4000)
)
x_valid, y_valid = make_recall_task(rng, 1000, seq_len, long_lag)
mixed_history = build_recall_model(seq_len).fit(
    x_mixed,
    y_mixed,
    validation_data=(x_valid, y_valid),
    epochs=8,
    batch_size=64,
    verbose=0,
    callbacks=[EpochLogger(4, "lags 1-80")],
)
x_train, y_train = make_recall_task(rng, 4000, seq_len, long_lag)
lstm_history = build_recall_model(seq_len, layer_type=keras.layers.LSTM).fit(
    x_train,
    y_train,
    validation_data=(x_valid, y_valid),
    epochs=8,
    batch_size=64,
    verbose=0,
    callbacks=[EpochLogger(4, "LSTM, lag 80")],
)
mixed_accuracy = np.array(mixed_history.history["val_accuracy"])
lstm_accuracy = np.array(lstm_history.history["val_accuracy"])
print(
    f"accuracy at lag {long_lag} per epoch: SimpleRNN trained on lags 1-80"
    f" {np.round(mixed_accuracy, 3)}, LSTM trained on lag 80"
    f" {np.round(lstm_accuracy, 3)}"
)
assert np.median(mixed_accuracy[-3:]) > 0.9, (
    "with short lags to start from, the SimpleRNN learns lag 80"
)
assert np.abs(lstm_accuracy[:3] - 0.5).max() < 0.1, (
    "trained on lag 80 alone, the LSTM sits at chance too"
)

# %% [markdown]
# With short lags in the data the `SimpleRNN` learns to keep the bit for 80 steps within eight epochs
# and keeps it (the assert takes the median of the last three epochs). The short examples give a
# gradient that arrives, it teaches the network to write the bit and hold it, and holding then works at
# any distance. Trained on lag 80 alone, the LSTM sits at chance for the first epochs like the
# `SimpleRNN` did; either of them may find the bit late, in a sudden jump, or never. So what vanishing
# gradients make slow and unreliable is learning a dependency *from scratch* when it only ever appears
# far away, behind distractors (the control below takes them away), and an LSTM with Keras's default
# initialisation does not escape that: its forget gates start near $\sigma(1) \approx 0.73$, so its
# cell path alone keeps $0.73^{80} \approx 10^{-11}$ over 80 steps; its paths through the gates keep
# more, but little (the control below measures the bit's trace in it). Gated cells (next
# chapter) add an additive path through time whose [Jacobian](glossary.md#jacobian) can stay close to
# the identity once the gates have learned to hold; chapter 3 measures how that path starts weak and is
# opened by training, and trains the same LSTM with its forget gates started open.
#
# **Without the distractors.** Which factor of section 5's Jacobian $\operatorname{diag}(1 - h_t^2)\,
# W_{hh}^\top$ does the shrinking here? Keras starts a `SimpleRNN`'s recurrent matrix
# [orthogonal](glossary.md#orthogonal-initialisation), with every singular value 1 (chapter 8 explains
# why), so the matrix alone would carry the gradient across 80 steps unchanged. The other factor is the
# tanh derivative, and the noise channel, read at every step, keeps pushing the units away from zero,
# where that derivative is below 1. A control: the same task with the noise channel set to zero. On the
# untrained network we compare the gradient on the *state*, $\lVert \delta h_t \rVert$, 80 steps before
# the end with the one 5 steps before (section 5's `gradient_norm_by_lag`, with the layer's weights;
# its bias starts at 0), and the mean tanh derivative $1 - h_t^2$ after the bit, with and without the
# noise.

# %% tags=["nbval-ignore-output"]
# the bias is still 0
W_xh_untrained, W_hh_untrained, _ = untrained.layers[0].get_weights()
# δh_T of the loss, up to a factor per sequence
readout_row = untrained.layers[1].get_weights()[0].T
x_clean_probe = x_probe.numpy().copy()
x_clean_probe[:, :, 1] = 0  # no noise: only the bit


def untrained_states(inputs):
    """The untrained SimpleRNN's states (batch, time, units), computed in NumPy with its
    weights."""
    states, h = [], np.zeros((len(inputs), W_hh_untrained.shape[0]))
    for t in range(inputs.shape[1]):
        h = np.tanh(inputs[:, t] @ W_xh_untrained + h @ W_hh_untrained)
        states.append(h)
    return np.stack(states, axis=1)


state_reach, slope_after_bit, bit_trace = {}, {}, {}
for name, inputs in (("with noise", x_probe.numpy()), ("without noise", x_clean_probe)):
    norms = gradient_norm_by_lag(
        W_hh_untrained, W_xh_untrained, inputs, np.repeat(readout_row, len(inputs), 0)
    )
    # index lag - 1: the state written at the bit's own step (norms[0] is the last
    # state's own gradient)
    state_reach[name] = float(np.median(norms[long_lag - 1] / norms[short_lag - 1]))
    states = untrained_states(inputs)
    slope_after_bit[name] = float(np.mean(1 - states[:, seq_len - long_lag :] ** 2))
    flipped = inputs.copy()
    flipped[:, :, 0] *= -1  # the other bit, the same noise
    bit_trace[name] = float(
        np.linalg.norm(states[:, -1] - untrained_states(flipped)[:, -1], axis=1).mean()
    )
    print(
        f"{name:>13}: ||δh|| at lag {long_lag} / at lag {short_lag}"
        f" {state_reach[name]:.1e} (median), mean tanh' after the bit"
        f" {slope_after_bit[name]:.3f}, the bit's trace in the last state ||h_T(+1) -"
        f" h_T(-1)|| {bit_trace[name]:.1e}"
    )
# Keras's defaults, as the LSTM arms of this section
untrained_lstm = keras.layers.LSTM(untrained.layers[0].units)
x_clean_flipped = x_clean_probe.copy()
x_clean_flipped[:, :, 0] *= -1
lstm_bit_trace = float(
    np.linalg.norm(
        untrained_lstm(x_clean_probe) - untrained_lstm(x_clean_flipped), axis=1
    ).mean()
)
print(
    "untrained default LSTM, without noise: the bit's trace in the last state"
    f" {lstm_bit_trace:.1e}"
)
recurrent_singular_values = np.linalg.svd(W_hh_untrained, compute_uv=False)
print(
    f"untrained W_hh: singular values from {recurrent_singular_values.min():.4f} to "
    f"{recurrent_singular_values.max():.4f}"
)

# %%
assert np.allclose(recurrent_singular_values, 1, atol=1e-4), (
    "Keras starts W_hh orthogonal"
)
assert state_reach["without noise"] > 0.1, (
    "without the noise, a good share of the gradient reaches lag 80"
)
assert state_reach["without noise"] > 100 * state_reach["with noise"], (
    "the noise takes it away"
)
assert slope_after_bit["without noise"] > slope_after_bit["with noise"] + 0.05, (
    "through the tanh derivatives"
)
assert bit_trace["with noise"] < 1e-3 * bit_trace["without noise"], (
    "and the bit's trace in the state with it"
)
assert lstm_bit_trace < 1e-3 * bit_trace["without noise"], (
    "the default LSTM keeps little of the bit, even clean"
)

# %% [markdown]
# Without the noise the tanh derivatives after the bit stay near 1, and a good share of the gradient on
# the state reaches 80 steps back (more than a tenth of the lag-5 one, asserted); with the noise the
# derivatives are lower (asserted) and, multiplied over 80 steps, leave more than a hundred times less
# (asserted). The orthogonal matrix passes the gradient on; the noise, through the tanh derivatives,
# takes it away. The untrained default LSTM, by contrast, keeps less than a thousandth of the
# `SimpleRNN`'s trace of the bit even without noise (printed, asserted): its paths through the gates
# keep more than its cell path alone, but still very little.
#
# The same product of Jacobians appears in the forward pass: $\partial h_T / \partial x_t$, how much of
# the bit is still in the last state, is that product times $W_{xh}$. So the noise also buries the bit
# in the untrained state: the last states for the bit $+1$ and for $-1$, with the same noise, differ by
# less than a thousandth of what they differ without it (printed above as the bit's trace, asserted).
# Does that decide learning? We train only the readout, with the recurrent layer frozen at its initial
# weights, on the task with and without noise (one epoch each), and the default LSTM, fully trained, on
# the clean task.

# %% tags=["nbval-ignore-output"]
x_clean_train, y_clean_train = make_recall_task(rng, 4000, seq_len, long_lag)
x_noisy_train, x_clean_valid = x_clean_train.copy(), x_valid.copy()
x_clean_train[:, :, 1], x_clean_valid[:, :, 1] = 0, 0
control_accuracy = {}
for name, layer_type, frozen, inputs, valid_inputs in (
    (
        "SimpleRNN frozen, no noise",
        keras.layers.SimpleRNN,
        True,
        x_clean_train,
        x_clean_valid,
    ),
    ("SimpleRNN frozen, noise", keras.layers.SimpleRNN, True, x_noisy_train, x_valid),
    ("LSTM, no noise", keras.layers.LSTM, False, x_clean_train, x_clean_valid),
):
    # frozen: readout only
    model = build_recall_model(
        seq_len, layer_type=layer_type, train_recurrence=not frozen
    )
    history = model.fit(
        inputs,
        y_clean_train,
        validation_data=(valid_inputs, y_valid),
        epochs=1,
        batch_size=64,
        verbose=0,
        callbacks=[EpochLogger(1, name)],
    )
    control_accuracy[name] = history.history["val_accuracy"][0]
print({name: round(accuracy, 3) for name, accuracy in control_accuracy.items()})

# %%
assert control_accuracy["SimpleRNN frozen, no noise"] > 0.95, (
    "untrained, the clean state still holds the bit"
)
assert abs(control_accuracy["SimpleRNN frozen, noise"] - 0.5) < 0.1, (
    "with the noise, it is buried"
)
assert abs(control_accuracy["LSTM, no noise"] - 0.5) < 0.1, (
    "the default LSTM is at chance on the clean task"
)

# %% [markdown]
# Without the noise the *untrained* `SimpleRNN` still holds the bit after 80 steps: tanh is odd and
# the bias starts at 0, so the two classes end in exactly opposite states, and a readout trained on its
# own separates them within one epoch (asserted). That task is degenerate: without the noise every
# sequence with the bit $+1$ is the same sequence, so the readout only has to tell two fixed final
# states apart, and it can because they differ by almost a unit (the trace printed above). With the
# noise, the same frozen readout is at chance (asserted). These are one fact seen from two sides: the
# bit's trace in the last state and the gradient back to it travel through the same product of
# Jacobians, and the noise shrinks both. So the distractors, through the tanh derivatives, are what
# take the bit's trace and its gradient away in the `SimpleRNN`; Hochreiter & Schmidhuber's
# long-memory tasks, too, fill the gap between cause and effect with distractors. The default LSTM, in
# contrast, is at chance after an epoch on the clean task (asserted): its forget gates, near
# $\sigma(1) \approx 0.73$, shrink its cell path, noise or not, and with it both the bit's trace and the
# gradient. That is the starting point of chapter 3.
#
# ## 7. Exploding gradients and gradient clipping
#
# The opposite failure is loud. Take a ReLU RNN whose recurrent matrix starts as the identity (the
# "IRNN" of Le et al., 2015): $h_t = \max(0,\, h_{t-1} + x_t W_{xh} + b_h)$ simply adds up its inputs, a
# natural counter. The task: count the ones in a stream of 100 random bits, each 1 with probability
# 0.1. The count averages 10 with a variance of about 9, which is the MSE of the trivial model that
# always answers the average. Nothing saturates in a ReLU network: if a training step makes the
# recurrent matrix amplify by 5% per step, the state is multiplied by $1.05^{100} \approx 130$ at the
# end of the sequence, and the gradient by as much again.
#
# We train with plain SGD in a loop of our own, so that we can record, at every step, the loss, the
# gradient norm (before any clipping) and the length of the step actually taken.


# %%
def train_and_record(model, optimizer, x, y, steps=200, batch_size=32):
    """SGD steps on consecutive batches; return the loss, the gradient norm and the step
    length (the norm of the change of all weights) of each step, stopping at NaN."""

    @tf.function
    def train_step(x_batch, y_batch):
        before = [tf.identity(weight) for weight in model.trainable_variables]
        with tf.GradientTape() as tape:
            loss = keras.ops.mean((model(x_batch) - y_batch) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        # clipping, if any, happens in here
        optimizer.apply(grads, model.trainable_variables)
        changes = [
            after - old
            for after, old in zip(model.trainable_variables, before, strict=True)
        ]
        step = tf.linalg.global_norm(changes)
        return loss, tf.linalg.global_norm(grads), step

    records = []
    for step in range(steps):
        start = step * batch_size % len(x)
        records.append(
            [
                float(value)
                for value in train_step(
                    x[start : start + batch_size], y[start : start + batch_size]
                )
            ]
        )
        if not np.isfinite(records[-1][0]):
            break
    losses, grad_norms, step_lengths = np.array(records).T
    return losses, grad_norms, step_lengths


# %%
def build_irnn(seq_len=100, hidden_size=32):
    return keras.Sequential(
        [
            keras.Input((seq_len, 1)),
            keras.layers.SimpleRNN(
                hidden_size,
                activation="relu",
                recurrent_initializer=keras.initializers.Identity(),
            ),
            keras.layers.Dense(1),
        ]
    )


rng = np.random.default_rng(seed)
x_count = (rng.uniform(size=(2048, 100, 1)) < 0.1).astype("float32")
y_count = x_count.sum(axis=1)
baseline_mse = float(y_count.var())  # MSE of always answering the average count
initial_weights = build_irnn().get_weights()

# %% [markdown]
# **Three ways to clip in Keras.** Every Keras optimizer takes one of these arguments:
# - `clipvalue=v` clips each gradient entry to $[-v, v]$. Cheap, but it changes the **direction** of
#   the step: large entries are cut, small ones are not.
# - `clipnorm=v` rescales each weight tensor's gradient separately so its norm is at most $v$. The
#   direction within a tensor is kept, but the balance between tensors changes.
# - `global_clipnorm=v` rescales the whole gradient (all tensors together) to norm at most $v$. The
#   direction is kept exactly; this is the "gradient clipping" of Pascanu et al. (2013), and the one to
#   use by default for RNNs.
#
# We can watch each of them act on a known gradient: two variables start at zero, SGD with learning
# rate 1 applies the gradients $g_1 = (3, 4)$ and $g_2 = (12)$ (total norm 13), so the new values are
# minus the clipped gradient.

# %%
gradient = [np.array([3.0, 4.0]), np.array([12.0])]
flat_gradient = np.concatenate(gradient)
for option in ({"clipvalue": 1.0}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0}):
    variables = [keras.Variable(np.zeros(2)), keras.Variable(np.zeros(1))]
    keras.optimizers.SGD(learning_rate=1.0, **option).apply(
        [tf.constant(g) for g in gradient], variables
    )
    step = -np.concatenate([v.numpy() for v in variables])
    cosine = (
        step @ flat_gradient / (np.linalg.norm(step) * np.linalg.norm(flat_gradient))
    )
    print(
        f"{str(option):26s} step {np.round(step, 4)}  norm {np.linalg.norm(step):.4f}  "
        f"cosine with the gradient {cosine:.4f}"
    )

# %% [markdown]
# `clipvalue` turned $(3, 4, 12)$ into $(1, 1, 1)$: a different direction (cosine well below 1).
# `clipnorm` scaled each tensor to norm 1, so the step has norm $\sqrt 2$ and a slightly different
# direction. `global_clipnorm` divided everything by 13: norm 1, same direction, cosine exactly 1.
#
# The same threshold does not mean the same budget. `global_clipnorm=1` caps the step at learning
# rate × 1. `clipvalue=1` caps each of the model's $P$ gradient entries at 1, so its step can be
# $\sqrt{P}$ times longer; here $P$ is:

# %%
num_weights = build_irnn().count_params()
print(
    f"P = {num_weights:,} weights: clipvalue=1 allows a step up to sqrt(P) ="
    f" {np.sqrt(num_weights):.1f} times longer"
)

# %% [markdown]
# To separate the direction from the length, we add two runs. `clipvalue` at $1/\sqrt{P}$ bends the
# direction like `clipvalue=1`, but its steps can be no longer than those of `global_clipnorm=1`.
# `global_clipnorm` with a threshold chosen so that its median step is as long as `clipvalue=1`'s keeps
# the direction exactly but takes long steps. Six runs of 200 steps from the same initial weights with
# the same learning rate, $10^{-3}$: without clipping, and with each kind of clipping.

# %% tags=["nbval-ignore-output"]
matched_value = 1 / np.sqrt(num_weights)
clip_options = {
    "no clipping": {},
    "clipvalue=1": {"clipvalue": 1.0},
    "clipvalue=1/sqrt(P)": {"clipvalue": matched_value},
    "clipnorm=1": {"clipnorm": 1.0},
    "global_clipnorm=1": {"global_clipnorm": 1.0},
}
long_label = "global_clipnorm, long steps"
clip_options[long_label] = None  # its threshold is set from the clipvalue=1 run below
irnn_runs = {}
for label, option in clip_options.items():
    # a step length as long as clipvalue=1's median, in the gradient's direction
    if label == long_label:
        option = {
            "global_clipnorm": float(np.median(irnn_runs["clipvalue=1"][2])) / 1e-3
        }
    model = build_irnn()
    model.set_weights(initial_weights)
    irnn_runs[label] = train_and_record(
        model, keras.optimizers.SGD(1e-3, **option), x_count, y_count
    )
    losses, grad_norms, step_lengths = irnn_runs[label]
    print(
        f"{label:26s} {len(losses):3d} steps  loss first {losses[0]:7.3g} largest"
        f" {np.nanmax(losses):8.3g} last {losses[-1]:8.3g}  first gradient norm"
        f" {grad_norms[0]:.3g}  median step {np.median(step_lengths):.2g}"
    )
print(f"baseline (always answer the average): MSE {baseline_mse:.2f}")

# %% tags=["nbval-ignore-output"]
fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
for label, (losses, grad_norms, _) in irnn_runs.items():
    # the two long-step runs overlap: draw them see-through
    faint = "value" in label or "long" in label
    style = (
        {"marker": "o", "markersize": 8}
        if len(losses) < 10
        else {"alpha": 0.5 if faint else 0.9}
    )
    ax_loss.semilogy(
        np.where(np.isfinite(losses), losses, np.nan), label=label, **style
    )
    ax_grad.semilogy(grad_norms, **style)
ax_loss.axhline(
    baseline_mse, color="gray", linestyle=":", label="always answer the average"
)
ax_grad.axhline(1.0, color="k", linestyle=":")
ax_loss.set(
    xlabel="training step",
    ylabel="MSE on the batch (count²)",
    title="Loss (a run that stops: NaN)",
)
ax_grad.set(
    xlabel="training step",
    ylabel="gradient norm before clipping",
    title="Gradient norm (dotted: threshold 1)",
)
fig.legend(loc="outside lower center", ncol=4)
plt.show()


# %% tags=["nbval-ignore-output"]
def late_loss(label):
    """The median loss of the last 50 steps: robust to the spikes of a run that never
    settles."""
    return float(np.median(irnn_runs[label][0][-50:]))


def median_step(label):
    return float(np.median(irnn_runs[label][2]))


# diverged
assert not np.all(np.isfinite(irnn_runs["no clipping"][0])), (
    "without clipping the run diverges: its loss stops being a finite number"
)
for label in ("clipvalue=1/sqrt(P)", "clipnorm=1", "global_clipnorm=1"):
    assert len(irnn_runs[label][0]) == 200 and np.all(
        np.isfinite(irnn_runs[label][0])
    ), "each short-step clipped run survives all 200 steps without NaN"
    # learned to count: well below the average
    assert late_loss(label) < 0.5 * baseline_mse, (
        "short clipped steps learn to count: below half the baseline"
    )
# same threshold, much longer steps
assert median_step("clipvalue=1") > 5 * median_step("global_clipnorm=1"), (
    "clipvalue=1's median step is over 5 times global_clipnorm=1's"
)
# the gradient norm exceeds the threshold at every step
assert irnn_runs["global_clipnorm=1"][1].min() > 1, (
    "with global_clipnorm=1, clipping is active on every step"
)
# long steps, bent or exact: neither learns to count
for label in ("clipvalue=1", long_label):
    assert len(irnn_runs[label][0]) == 200 and late_loss(label) > 0.5 * baseline_mse, (
        "with long steps, bent or exact, the run survives but stays above half the"
        " baseline"
    )
print(
    {
        label: (round(late_loss(label), 3), f"{median_step(label):.1e}")
        for label in list(clip_options)[1:]
    }
)

# %% [markdown]
# Without clipping, the run is over after a step or two (the loss becomes NaN). With `clipnorm` or
# `global_clipnorm` every step is short (at most learning rate × threshold $= 10^{-3}$, per weight
# tensor for `clipnorm`), the run survives, and the loss of its last steps is well below the
# baseline: the network counts, off by a count or two. `clipvalue=1` survives too, but it never settles: its
# loss keeps jumping, often above what always answering the average costs, and the median of its
# last 50 losses stays above half the baseline. With gradients in the thousands, enough entries hit
# the cap that its median step is many times longer than `global_clipnorm`'s (printed above).
# The two extra runs complete the picture, a two-by-two design of direction against length:
#
# | | short steps | long steps |
# |---|---|---|
# | direction bent | `clipvalue=1/sqrt(P)`: learns | `clipvalue=1`: does not |
# | direction kept | `global_clipnorm=1`: learns | `global_clipnorm`, long steps: does not |
#
# It is the length of the steps, not their direction, that decides. Note also the right panel: the
# gradient norm stays above the threshold for the whole run (asserted), so clipping is active on every step
# and the learning rate alone sets the step length. Exercise 4 asks whether a smaller learning rate
# would have done the same job.
#
# **Where the huge first gradient comes from.** It is not the exponential growth of section 5: at the
# start $W_{hh} = I$, which neither grows nor shrinks a vector. The gradient is large because the problem
# has a large scale. The state adds up the inputs, so $h_t$ grows like $t$; the error of the final count
# grows with the length $T$; and $\delta W_{hh} = \sum_t h_{t-1}^\top \delta a_t$ adds up $T$ such
# terms. That predicts a power of $T$, not an exponential. We measure the initial gradient norm for
# streams of 25 to 400 steps, from the same initial weights:


# %% tags=["nbval-ignore-output"]
def initial_gradient_norm(stream_len, num_streams=256):
    """Global gradient norm of the MSE at the initial weights, for fresh count streams
    of stream_len steps."""
    x = (rng.uniform(size=(num_streams, stream_len, 1)) < 0.1).astype("float32")
    model = build_irnn(stream_len)
    model.set_weights(initial_weights)
    with tf.GradientTape() as tape:
        loss = keras.ops.mean((model(x) - x.sum(axis=1)) ** 2)
    return float(tf.linalg.global_norm(tape.gradient(loss, model.trainable_variables)))


stream_lengths = np.array([25, 50, 100, 200, 400])
initial_norms = np.array([initial_gradient_norm(n) for n in stream_lengths])
growth_per_doubling = initial_norms[1:] / initial_norms[:-1]
power = np.polyfit(np.log(stream_lengths), np.log(initial_norms), 1)[0]
norms_text = ", ".join(
    f"T={n}: {g:.2g}" for n, g in zip(stream_lengths, initial_norms, strict=True)
)
print("initial gradient norm:", norms_text)
print(
    "growth per doubling of T:",
    np.round(growth_per_doubling, 1),
    f"| fitted power of T: {power:.2f}",
)
assert 2 < power < 4 and growth_per_doubling.max() < 3 * growth_per_doubling.min(), (
    "the first gradient grows like a power of T between 2 and 4, by similar factors per"
    " doubling"
)

# %% [markdown]
# Each doubling of $T$ multiplies the gradient by about the same factor, between $2^2$ and $2^4$
# (printed above): a power law, the scale of the task. Exponential growth would square the factor at
# every doubling. The exponential arrives one step later (measured below). Taken at face value, that
# first gradient makes a step of length learning rate × gradient norm, in a network whose weights are
# of order 1, and the loss of the very next
# forward pass is no longer a number:

# %% tags=["nbval-ignore-output"]
unclipped_losses, unclipped_norms, _ = irnn_runs["no clipping"]
print(
    f"first unclipped step: length {1e-3 * unclipped_norms[0]:.2g}; loss before"
    f" {unclipped_losses[0]:.3g}, after {unclipped_losses[1]}"
)
assert not np.isfinite(unclipped_losses[1]), (
    "one unclipped step throws the weights into overflow"
)

# %% [markdown]
# Where does the overflow come from? We take that one step ourselves and run the ReLU recurrence with
# the new weights in float64, which has room for much larger numbers than float32's $3 \times 10^{38}$,
# and watch the norm of the state.

# %% tags=["nbval-ignore-output"]
jumped = build_irnn()
jumped.set_weights(initial_weights)
with tf.GradientTape() as tape:
    first_loss = keras.ops.mean((jumped(x_count[:32]) - y_count[:32]) ** 2)
keras.optimizers.SGD(1e-3).apply(
    tape.gradient(first_loss, jumped.trainable_variables), jumped.trainable_variables
)
jumped_kernel, jumped_recurrent, jumped_bias = (
    w.astype("float64") for w in jumped.layers[0].get_weights()
)
state, log10_norms = np.zeros((32, jumped_recurrent.shape[0])), []
for t in range(100):
    state = np.maximum(
        0, x_count[:32, t] @ jumped_kernel + state @ jumped_recurrent + jumped_bias
    )
    log10_norms.append(np.log10(np.linalg.norm(state, axis=1).max()))
growth_per_25 = np.diff(np.array(log10_norms)[[24, 49, 74, 99]])
print(
    "log10 of the largest state norm at t = 25, 50, 75, 100:",
    np.round(np.array(log10_norms)[[24, 49, 74, 99]], 1),
)
assert growth_per_25.min() > 3 and growth_per_25.max() < 1.5 * growth_per_25.min(), (
    "exponential: equal factors"
)

# %% [markdown]
# After that single step the state's norm grows by about the same enormous factor every 25 steps (more
# than a thousandfold, asserted): a
# straight line on a log scale, the exponential growth of section 5, now real. In float32 it passes
# $10^{38}$ long before step 100, and the loss overflows.
#
# That is the picture Pascanu et al. draw: a loss surface with a cliff. Near it the gradient is huge;
# one full step jumps off the edge into weights for which the ReLU state grows without bound over 100
# steps, and the forward pass overflows. Clipping does not remove the cliff; it refuses to jump.
#
# **With Adam.** The other chapters train with Adam, which divides each weight's step by a running
# root mean square of its past gradients, so that its steps are about as long as the learning rate
# whatever the gradient's size (Kingma & Ba, 2015): the step of length learning rate × gradient norm
# above does not carry over. Does clipping still matter? The same counting IRNN with Adam at a large
# learning rate, $10^{-2}$, from five starting points, each without and with `global_clipnorm=1`. At
# this rate the loss usually jumps early (on some starts it does not); we read the starts where it did.


# %% tags=["nbval-ignore-output"]
def adam_rms(optimizer, variable):
    """Adam's running root mean square of the gradients of `variable` (the square root
    of its second-moment slot, which Keras names after the variable's path), averaged
    over its entries."""
    slot = next(
        v
        for v in optimizer.variables
        if v.name == variable.path.replace("/", "_") + "_velocity"
    )
    return float(np.sqrt(np.mean(slot.numpy())))


# %% [markdown]
# Five starting points, each trained without and with clipping from the same weights:

# %% tags=["nbval-ignore-output"]
answer_zero_mse = float(np.mean(y_count**2))
adam_runs, readout_rms = [], []
for start in range(5):
    keras.utils.set_random_seed(seed + start)
    start_weights, pair, rms = build_irnn().get_weights(), {}, {}
    for clipped in (False, True):
        model = build_irnn()
        model.set_weights(start_weights)
        optimizer = keras.optimizers.Adam(
            1e-2, **({"global_clipnorm": 1.0} if clipped else {})
        )
        pair[clipped], *_ = train_and_record(model, optimizer, x_count, y_count)
        rms[clipped] = adam_rms(optimizer, model.layers[-1].bias)
    adam_runs.append(pair)
    readout_rms.append(rms)
    print(
        f"start {start}: largest loss {np.nanmax(pair[False]):8.3g} unclipped,"
        f" {np.nanmax(pair[True]):8.3g} clipped; median of the last 50 steps"
        f" {np.median(pair[False][-50:]):7.3g} unclipped,"
        f" {np.median(pair[True][-50:]):7.3g} clipped; Adam's root mean square for the"
        f" readout's bias {rms[False]:.2g} unclipped, {rms[True]:.2g} clipped"
    )
# a run that answers 0 throughout, with no spike: the bias's gradient is about -2 * mean
# count at every step, and Adam's running mean square of a constant g after t steps is
# g^2 (1 - beta_2^t)
steady_rms = 2 * y_count.mean() * np.sqrt(1 - 0.999**200)
print(
    f"the loss of answering 0 (the mean squared count): {answer_zero_mse:.1f}; baseline"
    f" {baseline_mse:.2f}; the readout bias's running root mean square of a run"
    f" answering 0 without a spike: {steady_rms:.1f}"
)

# %%
jumped = [
    k
    for k, pair in enumerate(adam_runs)
    if np.nanmax(pair[False]) > 1000 * answer_zero_mse
]
assert len(jumped) >= 2, (
    "at this learning rate the loss jumps on at least two starts of five"
)
for pair, rms in ((adam_runs[k], readout_rms[k]) for k in jumped):
    assert len(pair[False]) == len(pair[True]) == 200, "no NaN"
    assert 0.5 < np.nanmax(pair[True]) / np.nanmax(pair[False]) < 2, (
        "clipping does not stop Adam's jump"
    )
    assert (
        abs(np.median(pair[False][-50:]) - answer_zero_mse) < 0.25 * answer_zero_mse
    ), "unclipped: answers ~0"
    assert np.median(pair[True][-50:]) < baseline_mse, (
        "clipped, it recovers, below the baseline"
    )
    assert rms[False] > 1.5 * steady_rms, (
        "unclipped, the spike stays in Adam's running mean square"
    )

# %% [markdown]
# Where the loss jumped (more than a thousand times the cost of answering 0), clipping did not stop
# the jump: the clipped run's largest loss is about as large (within a factor 2 either way,
# asserted), since Adam's step is about the learning rate whatever the gradient's size, and rescaling
# the gradient barely shortens it. What clipping changes is what comes after. Unclipped, the spike's
# huge gradients inflate Adam's running mean square, and it forgets slowly ($\beta_2 = 0.999$): at
# the end of the run, the readout bias's running root mean square is still more than half again what
# a run answering 0 throughout, without a spike, would carry (printed, asserted; by how much depends
# on the size of the jump). Each of Adam's steps is the learning rate times the running mean of the
# gradient divided by that root mean square (both corrected for their start at zero), which keeps the
# readout's steps small; and the run ends answering about 0 (its late loss within a quarter of the
# mean squared count, asserted). That the one causes the other is the likely reading, not a test: a
# run can also end near 0 after a rise below the thousandfold mark, and the asserts read only the
# starts that jumped. Clipped, the spike never enters the running mean square at full size, and the
# run recovers: its late loss ends below the baseline of always answering the average count
# (asserted). That is why the book's models clip with Adam too: not to shorten the jump, but to keep
# it from stalling the run.
#
# ## 8. Truncated BPTT and stateful RNNs
#
# Full BPTT on a stream of a million steps would store a million hidden states and make one update per
# pass. **Truncated BPTT** cuts the stream into chunks of $k$ steps and trains on one chunk at a time.
# (Williams & Peng, 1990, backpropagate $h$ steps every $h' \le h$ steps; the chunked form here is their
# $h = h'$, the usual one in deep learning, in which a target at the start of a chunk gets no gradient
# from earlier steps at all.) Two things cross a chunk boundary differently:
# - the **state** goes forward: the last state of chunk $i$ is the initial state of chunk $i+1$, so at
#   prediction time the network still sees the whole past;
# - the **gradient** does not go back: the initial state of a chunk is treated as a constant, so a loss
#   can only reach inputs in its own chunk, at most $k - 1$ steps back.
#
# The trade-off: memory and time per update are proportional to $k$ instead of $T$, and there are
# $T/k$ updates per pass instead of one; the price is that no gradient asks the network to keep
# information longer than $k$ steps.
#
# The task: 32 streams of 2,048 random bits, and the target at every step is the bit seen 12 steps
# earlier (an echo with lag 12). The model maps a chunk and an initial state to per-step predictions
# and the final state, the explicit form of a [stateful RNN](glossary.md#stateful-rnn).


# %%
def make_echo_streams(rng, num_streams, stream_len, lag):
    """Random 0/1 streams; the target at step t is the input at step t - lag
    (0 for the first steps)."""
    x = rng.integers(0, 2, size=(num_streams, stream_len, 1)).astype("float32")
    y = np.zeros_like(x)
    y[:, lag:] = x[:, :-lag]
    return x, y


def build_chunk_model(hidden_size=32):
    chunk = keras.Input((None, 1))  # any chunk length
    state_in = keras.Input((hidden_size,))
    sequence, state_out = keras.layers.SimpleRNN(
        hidden_size, return_sequences=True, return_state=True
    )(chunk, initial_state=state_in)
    predictions = keras.layers.Dense(1, activation="sigmoid")(sequence)
    return keras.Model([chunk, state_in], [predictions, state_out])


# %% [markdown]
# The training loop carries the state from chunk to chunk. Because each `train_step` call receives the
# previous state as a plain input tensor, the gradient stops at the chunk boundary by construction.


# %%
def train_truncated(x, y, chunk_len, epochs=2, hidden_size=32):
    """Truncated BPTT over the streams x, y: one update per chunk, state carried between
    chunks."""
    model, optimizer = build_chunk_model(hidden_size), keras.optimizers.Adam(3e-3)

    @tf.function
    def train_step(x_chunk, y_chunk, state):
        with tf.GradientTape() as tape:
            predictions, next_state = model([x_chunk, state])
            loss = keras.ops.mean(
                keras.losses.binary_crossentropy(y_chunk, predictions)
            )
        optimizer.apply(
            tape.gradient(loss, model.trainable_variables), model.trainable_variables
        )
        return next_state

    for _ in range(epochs):
        # a new pass over the streams starts from zero
        state = tf.zeros((x.shape[0], hidden_size))
        for start in range(0, x.shape[1], chunk_len):
            state = train_step(
                x[:, start : start + chunk_len], y[:, start : start + chunk_len], state
            )
    return model


# %% [markdown]
# We train with chunks of 4, 8, 16 and 24 steps (lag 12), two passes over the streams each, then test
# each model on fresh streams of 500 steps read in one pass, counting only the steps that have a bit
# 12 steps back.

# %% tags=["nbval-ignore-output"]
echo_lag, hidden_size = 12, 32
rng = np.random.default_rng(seed)
x_streams, y_streams = make_echo_streams(rng, 32, 2048, echo_lag)
x_test, y_test = make_echo_streams(rng, 256, 500, echo_lag)
chunk_results = {}
for chunk_len in (4, 8, 16, 24):
    start_time = time.perf_counter()
    model = train_truncated(x_streams, y_streams, chunk_len)
    seconds = time.perf_counter() - start_time
    predictions, _ = model([x_test, np.zeros((len(x_test), hidden_size), "float32")])
    accuracy = np.mean(
        (predictions.numpy()[:, echo_lag:] > 0.5) == y_test[:, echo_lag:]
    )
    chunk_results[chunk_len] = {"accuracy": accuracy, "seconds": seconds}

# %% [markdown]
# The table shows the trade-off: the floats stored for one backward pass (chunk length × streams ×
# hidden units), the number of updates per pass over the data, the longest lag the gradient can see,
# and what was learned.

# %% tags=["nbval-ignore-output"]
print("chunk  stored floats  updates/pass  gradient sees  test accuracy  training time")
for chunk_len, result in chunk_results.items():
    print(
        f"{chunk_len:5d}  {chunk_len * 32 * hidden_size:13,d} "
        f" {len(range(0, 2048, chunk_len)):12d}  {chunk_len - 1:>8d} steps "
        f" {result['accuracy']:13.3f}  {result['seconds']:10.1f} s"
    )
# longer: learned
assert chunk_results[16]["accuracy"] > 0.95 and chunk_results[24]["accuracy"] > 0.95, (
    "chunks of 16 and 24 steps learn the lag-12 echo, accuracy above 0.95"
)
assert chunk_results[4]["accuracy"] < 0.8, (
    "chunks of 4 stay far below the longer chunks"
)

# %% tags=["nbval-ignore-output"]
chunk_lengths = list(chunk_results)
plt.plot(
    chunk_lengths,
    [chunk_results[k]["accuracy"] for k in chunk_lengths],
    "o-",
    label="SimpleRNN(32), 2 passes",
)
plt.axvline(
    echo_lag, color="C3", linestyle="--", label=f"lag of the task ({echo_lag} steps)"
)
plt.axhline(0.5, color="gray", linestyle=":", label="chance")
plt.xticks(chunk_lengths)
plt.xlabel("truncation length k (time steps)")
plt.ylabel("test accuracy per step")
plt.title("Truncated BPTT learns lags shorter than its chunks")
plt.legend()
plt.show()

# %% [markdown]
# With chunks of 4 steps the network stays far below the longer chunks, often not far above chance,
# although its state runs through the whole stream: the gradient never connects a target to the input
# 12 steps back, so nothing teaches the network to write that bit into its state and keep it. With
# chunks of 16 or 24 it learns the echo (over 95% of the test streams' steps right, asserted),
# although in training the first 12 targets of every chunk had their bit in the previous chunk, where
# only the forward state could carry it. What the short chunks (4 and 8) get above chance, from
# almost nothing to a good part, varies from seed to seed: no target shares a chunk with its bit, but
# the gradient can still teach the network to *preserve* whatever the random input weights happened
# to write into the carried state. Choose $k$ comfortably longer than the dependencies you need to
# learn. In the table, shorter chunks store fewer activations but need more updates. The comparison
# is not of equal work in one respect: with the same two passes, chunks of 4 make six times as many
# updates as chunks of 24. That favours the short chunks, and they still lose.
#
# **Keras's stateful layers.** The same carrying of the state is built into Keras: a layer created
# with `stateful=True` under `keras.Input(batch_shape=(batch, chunk_len, features))` starts each batch
# from the final state of the previous batch, and `layer.reset_states()` sets it back to zero. Then
# `fit` must be called with `shuffle=False` and the data laid out so that row $i$ of every batch
# continues row $i$ of the batch before. Exercise 3 checks that a stateful layer fed chunk by chunk
# gives the same outputs as one pass over the whole sequence.
#
# ## 9. The cost of BPTT
#
# The forward pass must finish step $t-1$ before it can start step $t$, and the backward pass runs the
# same chain in reverse: BPTT does $O(T)$ work that cannot be spread over time, and, as section 2
# derived, it needs all $T$ states in the backward pass, so it keeps them and its memory is $O(T)$ too
# (our `rnn_forward` caches them for exactly that reason; *gradient checkpointing* keeps only some and
# recomputes the rest, trading time for memory: Chen et al., 2016; Gruslys et al., 2016). We measure the
# time of one training step
# (forward and backward) for a `SimpleRNN(64)` on batches of 32 sequences, for lengths from 25 to
# 400. Each step is called once to warm up (which builds the graph), then the lengths take turns for
# 9 rounds, so that a slow spell of the machine falls on all lengths alike, and we keep each one's
# fastest round: other work on the machine can only add time, so the minimum is the closest to the
# step's own cost.


# %%
def training_step(batch_size, seq_len, hidden_size=64, input_size=8):
    """A function that runs one train_on_batch of a SimpleRNN(64) model on a fixed
    batch."""
    model = keras.Sequential(
        [
            keras.Input((seq_len, input_size)),
            keras.layers.SimpleRNN(hidden_size),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = (
        np.random.default_rng(seed)
        .normal(size=(batch_size, seq_len, input_size))
        .astype("float32")
    )
    y = np.zeros((batch_size, 1), "float32")
    return partial(model.train_on_batch, x, y)


# %% tags=["nbval-ignore-output"]
lengths = np.array([25, 50, 100, 200, 400])
steps = {(32, int(n)): training_step(32, int(n)) for n in lengths}
steps[512, 25] = training_step(512, 25)  # 16 times more sequences: used below
tf_log_level = tf.get_logger().level
# six models trace one function each: not a retracing problem
tf.get_logger().setLevel("ERROR")
step_times = interleaved_seconds(steps, rounds=9)
tf.get_logger().setLevel(tf_log_level)
batch_seconds = np.array([np.min(step_times[32, int(n)]) for n in lengths])
for n, sec in zip(lengths, batch_seconds, strict=True):
    print(f"T = {n:3d}: {1000 * sec:6.1f} ms per training step")

# %% tags=["nbval-ignore-output"]
time_fit = linear_fit(lengths, batch_seconds)
print(f"time: {1e6 * time_fit[0]:.1f} µs per extra step, R² {time_fit[2]:.3f}")
more_steps_cost = paired_ratio(step_times, (32, 400), (32, 25))
if gpu_available():  # not measured on a GPU: only the order is asserted there
    assert more_steps_cost > 1, "400 sequential steps cost more than 25"
else:
    assert more_steps_cost > 2.5 and time_fit[2] > 0.9, (
        "on the CPU the time grows along a straight line"
    )

# %% tags=["nbval-ignore-output"]
plt.plot(lengths, 1000 * batch_seconds, "o", label="measured (fastest of 9, in turns)")
plt.plot(
    lengths,
    1000 * (time_fit[0] * lengths + time_fit[1]),
    "--",
    label=f"linear fit, R² = {time_fit[2]:.3f}",
)
plt.xlabel("sequence length T (steps)")
plt.ylabel("time per training step (ms)")
plt.title("Keras SimpleRNN(64), batch 32: one training step")
plt.legend()
plt.show()

# %% [markdown]
# The time grows with $T$, and on the CPU in a straight line (R² printed above; on a GPU, where the
# book has not measured it, the cell asserts only that 400 steps cost more than 25). The line does not
# pass through zero: every call has a fixed overhead.
#
# "Cannot be parallelised over time" deserves its own measurement. Starting from 32 sequences of 25
# steps, we make the batch 16 times larger in two ways: 16 times more sequences (512 × 25) or 16 times
# longer sequences (32 × 400, measured above). The arithmetic is the same; only how much of it can be
# done at once differs.

# %% tags=["nbval-ignore-output"]
more_sequences = np.min(step_times[512, 25])
print(
    f"32 x 25: {1000 * batch_seconds[0]:.1f} ms | 16x more sequences, 512 x 25:"
    f" {1000 * more_sequences:.1f} ms | 16x longer, 32 x 400:"
    f" {1000 * batch_seconds[-1]:.1f} ms"
)
assert paired_ratio(step_times, (512, 25), (32, 400)) < 0.9, (
    "the same arithmetic costs more as steps than as sequences"
)

# %% [markdown]
# Sequences in a batch are independent, so one time step processes all of them with a single, wider
# matrix product; time steps are not, so 400 steps cost 400 products one after the other, each with its
# own overhead. Even on a CPU with a thread or two the longer sequences cost more than the wider batch;
# on hardware that runs wide matrix products in parallel (several cores, a GPU) the extra sequences
# should become almost free while the extra steps do not (not measured here). This is the cost that
# convolutional and attention-based sequence models (later chapters) remove.
#
# ## 10. Pitfalls
#
# - **Vanishing gradients are silent.** Nothing crashes: the loss just stays at the level of a model
#   that ignores the distant input (section 6). To diagnose, measure $\lVert\partial L/\partial x_t\rVert$
#   or $\lVert\delta h_t\rVert$ against the lag, as we did.
# - **Clipping can hide problems.** When the gradient norm is above the threshold on every step (as in
#   section 7), clipping has turned SGD into fixed-length steps: it still keeps every step short, but
#   it no longer tells a spike from a normal step, and a broken loss or a bad scale of the targets goes
#   unnoticed. Log the gradient
#   norm before clipping (as `train_and_record` does) and know how often clipping acts.
# - **`clipvalue` caps entries, not the step.** Its threshold applies to each of the $P$ weights, so a
#   step may be $\sqrt{P}$ times longer than with `global_clipnorm` at the same threshold (section 7),
#   and it bends the direction; `clipnorm` acts per tensor. Prefer `global_clipnorm` (chapter 3's
#   character model uses it).
# - **Sum or mean over time.** Summing the per-step losses instead of averaging multiplies every
#   gradient by $T$: with SGD, a learning rate tuned for $T = 20$ can diverge at $T = 500$. (Adam divides
#   by a running scale of the gradient and barely notices.)
# - **Stateful training needs ordered, unshuffled batches** and a state reset between independent
#   streams and between epochs. A shuffled stateful model silently carries the state of one stream into
#   another.
# - **Truncation shorter than the dependency** (section 8) gives a model that trains fine on short
#   patterns and never learns the long one; the loss curve does not tell you why.
# - **Gradient checks in float32** fail for the wrong reason: float32 resolves only about 7 digits, so
#   with $\varepsilon = 10^{-6}$ the difference of two losses keeps almost none. Check in float64, as in
#   section 4.

# %% [markdown]
# ## 11. Summary
#
# - An RNN unrolled over $T$ steps is a $T$-layer feedforward network with shared weights; its loss
#   at step $t$ depends on all inputs up to $t$.
# - BPTT is backpropagation on that graph: a backward loop in which $\delta h_t$ collects the
#   gradient from its own output and from the next step, and shared weights sum the gradients of all
#   steps. Our 20-line NumPy version equals `tf.GradientTape` to within $10^{-12}$ in float64.
# - The gradient reaching a lag of $n$ steps is a product of $n$ Jacobians
#   $\operatorname{diag}(1 - h^2) W_{hh}^\top$: it shrinks or grows exponentially, with slope $\ln\rho$
#   in the linear regime, pulled down by saturation.
# - Vanishing gradients make long dependencies slow and unreliable to learn for a SimpleRNN, even
#   when one unit could hold them: a state that holds a bit robustly passes almost no gradient
#   (Bengio, Simard & Frasconi, 1994). An LSTM with its default initialisation fares no better on a lag
#   that only ever appears far away; with short lags in the data, the `SimpleRNN` finds it. Without
#   the distractors in between, the untrained `SimpleRNN` (orthogonal $W_{hh}$) keeps the bit in its
#   state, so its readout alone tells the two (then only two) sequences apart: the noise, through the
#   tanh derivatives, shrinks both that trace and the gradient; the default LSTM, with its forget gates
#   near 0.73, keeps less than a thousandth of the trace even without noise.
# - Exploding gradients make the loss jump to NaN, and with SGD `global_clipnorm` fixes them without
#   changing the gradient's direction; with Adam the jump stays about as high (within a factor 2),
#   but the clipped run recovers where the unclipped one stalls (most likely because the spike's full
#   size stays out of Adam's running mean square).
# - Truncated BPTT bounds memory by the chunk length and carries the state forward, but learns reliably
#   only dependencies shorter than a chunk.
# - BPTT's time grows linearly with $T$ (measured), its memory too (it keeps every state), and the time
#   steps must be processed one after the other.

# %% [markdown]
# ## 12. Exercises
#
# **Exercise 1 — the gradient for the initial state.** Sometimes the initial state $h_0$ is learned, or
# carried from a previous chunk. Extend the backward pass to return $\delta h_0$ (hint: after the loop,
# one more product with $W_{hh}^\top$) and check it against `tf.GradientTape`, passing $h_0$ to the
# Keras layer as `initial_state`.


# %% tags=["solution"]
# Exercise 1: write your answer where the solution markers are.
def initial_state_gradient(params, cache):
    """δh_0: the gradient that would flow into the previous chunk (run the BPTT loop,
    one more step)."""
    ### BEGIN SOLUTION
    # run the BPTT loop one step further back, to the initial state.
    x, states, y = cache["x"], cache["states"], cache["y"]
    dy = 2 * (y - cache["targets"]) / y.size
    da_next = np.zeros_like(states[0])
    for t in reversed(range(x.shape[1])):
        dh = dy[:, t] @ params["W_hy"].T + da_next @ params["W_hh"].T
        da_next = dh * (1 - states[t + 1] ** 2)
    return da_next @ params["W_hh"].T
    ### END SOLUTION


# %% tags=["check"]
h0 = tf.zeros((x_small.shape[0], params["W_hh"].shape[0]), dtype="float64")
rnn_layer, dense_layer = keras_rnn.layers[1], keras_rnn.layers[2]
with tf.GradientTape() as tape:
    tape.watch(h0)
    loss_h0 = keras.ops.mean(
        (dense_layer(rnn_layer(x_small, initial_state=h0)) - targets_small) ** 2
    )
agree = np.allclose(
    initial_state_gradient(params, cache),
    tape.gradient(loss_h0, h0).numpy(),
    rtol=1e-10,
    atol=1e-14,
)
print("δh_0 agrees with the tape:", agree)
assert agree, "your δh_0 must match tf.GradientTape's gradient for the initial state"

# %% [markdown]
# **Exercise 2 — a linear RNN follows the theory exactly.** Remove the $\tanh$ (so the Jacobian is just
# $W_{hh}^\top$) and measure the gradient slope for $\rho \in \{0.5, 0.9, 1.0, 1.2\}$: start from the
# same 32 random gradients for every $\rho$ (standard normal, one row each), apply the Jacobian 60
# times, keep the mean log-norm at each of the 60 steps in `linear_log_norms[rho]` and the slope of a
# straight line fitted to it in `linear_slopes[rho]`. How close is the slope to $\ln\rho$? Why is it
# not exactly $\ln\rho$, and why is the gap, slope minus $\ln\rho$, the same for every $\rho$?

# %% tags=["solution"]
# Exercise 2: write your answer where the solution markers are.
rng = np.random.default_rng(seed)
### BEGIN SOLUTION
# the log-norm of a linear RNN's gradient falls (or grows) with slope ln(rho) per step.
linear_log_norms, linear_slopes = {}, {}
# the same start for every rho
start_gradients = rng.normal(size=(32, direction.shape[0]))
for rho in (0.5, 0.9, 1.0, 1.2):
    dh, norms = start_gradients, []
    for _ in range(60):
        norms.append(np.linalg.norm(dh, axis=1))
        dh = dh @ (rho * direction).T  # linear RNN: the Jacobian is W_hh^T
    linear_log_norms[rho] = np.log(np.array(norms)).mean(axis=1)
    linear_slopes[rho] = np.polyfit(np.arange(60), linear_log_norms[rho], 1)[0]
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
for rho, slope in linear_slopes.items():
    print(f"rho {rho}: slope {slope:+.3f}, ln(rho) {np.log(rho):+.3f}")
assert sorted(linear_slopes) == sorted(linear_log_norms) == [0.5, 0.9, 1.0, 1.2], (
    "linear_slopes and linear_log_norms need exactly the keys 0.5, 0.9, 1.0 and 1.2"
)
for rho, log_norms in linear_log_norms.items():
    log_norms = np.asarray(log_norms, dtype="float64")
    assert log_norms.shape == (60,), "one mean log-norm per step, 60 steps"
    assert abs(log_norms[0] - np.log(np.sqrt(direction.shape[0]))) < 0.2, (
        "start: standard normal rows, norm ≈ √64"
    )
    line = np.polyfit(np.arange(60), log_norms, 1)
    assert abs(line[0] - linear_slopes[rho]) < 1e-6, (
        "the slope is the one fitted to the measured log-norms"
    )
    assert np.std(log_norms - np.polyval(line, np.arange(60))) > 0.003, (
        "measured norms are not an exact line"
    )
    assert abs(linear_slopes[rho] - np.log(rho)) < 0.1, (
        "each fitted slope must be within 0.1 of ln ρ"
    )
gaps = [linear_slopes[rho] - np.log(rho) for rho in linear_slopes]
print("slope - ln(rho):", np.round(gaps, 6))
assert np.ptp(gaps) < 1e-9, (
    "the same start for every rho: (rho W)^n = rho^n W^n shifts every log-norm by n"
    " ln(rho)"
)

# %% [markdown]
# The slopes match $\ln\rho$ (within 0.1, asserted), and the gap is the same for every $\rho$: since
# $(\rho W)^n = \rho^n W^n$, scaling the matrix adds exactly $n \ln\rho$ to every log-norm, so with
# the same start vectors the four curves are one curve, tilted. The gap comes from the other
# eigenvalues: most of a random matrix's eigenvalues lie well inside the circle of radius $\rho$, and
# the norm is dominated by the largest one only after the components along the smaller ones have died
# out. (A normal matrix with the same eigenvalues shows the same gap; non-normality can bend the
# early curve either way, as the transient growth at $\rho = 0.9$ in section 5 showed.)
#
# **Exercise 3 — a stateful layer equals the explicit state loop.** Build a `SimpleRNN` with
# `stateful=True` for chunks of 10 steps, give it the weights of a non-stateful layer, feed a sequence of
# 50 steps chunk by chunk, and check that the outputs equal one pass over the whole sequence. Then call
# `reset_states()` and check that the first chunk gives the same output again.

# %% tags=["solution"]
# Exercise 3: write your answer where the solution markers are.
full_layer = keras.layers.SimpleRNN(8, return_sequences=True)
x_long = np.random.default_rng(seed).normal(size=(2, 50, 3)).astype("float32")
full_output = full_layer(x_long).numpy()
### BEGIN SOLUTION
# the stateful layer, fed chunk by chunk, against one pass of the same weights.
stateful_layer = keras.layers.SimpleRNN(8, return_sequences=True, stateful=True)
stateful_rnn = keras.Sequential([keras.Input(batch_shape=(2, 10, 3)), stateful_layer])
stateful_layer.set_weights(full_layer.get_weights())
chunked_output = np.concatenate(
    [stateful_rnn(x_long[:, i : i + 10]).numpy() for i in range(0, 50, 10)], axis=1
)
stateful_layer.reset_states()
after_reset = stateful_rnn(x_long[:, :10]).numpy()
### END SOLUTION

# %% tags=["check"]
print(
    "chunk by chunk == one pass:", np.allclose(chunked_output, full_output, atol=1e-5)
)
print(
    "after reset_states the first chunk repeats:",
    np.allclose(after_reset, full_output[:, :10], atol=1e-5),
)
assert np.allclose(chunked_output, full_output, atol=1e-5), (
    "fed chunk by chunk, the stateful layer must give the outputs of one pass over all"
    " 50 steps"
)
assert np.allclose(after_reset, full_output[:, :10], atol=1e-5), (
    "after reset_states() the first chunk must give the one-pass output again"
)

# %% [markdown]
# **Exercise 4 — why not just a smaller learning rate?** Train the counting IRNN of section 7 without
# clipping at learning rates $10^{-5}$ and $10^{-6}$, from the same initial weights. Which ones jump
# away, and where do they end? How does the survivor compare with the clipped run?

# %% tags=["solution", "nbval-ignore-output"]
# Exercise 4: write your answer where the solution markers are.
### BEGIN SOLUTION
# the counting IRNN without clipping, at learning rates 100 and 1000 times smaller.
small_lr_runs = {}
for learning_rate in (1e-5, 1e-6):
    model = build_irnn()
    model.set_weights(initial_weights)
    small_lr_runs[learning_rate], *_ = train_and_record(
        model, keras.optimizers.SGD(learning_rate), x_count, y_count
    )
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
for learning_rate, losses in small_lr_runs.items():
    print(
        f"lr {learning_rate:.0e}, no clipping: loss first {losses[0]:.3g} largest"
        f" {np.nanmax(losses):.3g} final {np.mean(losses[-20:]):.3g}"
    )
print(
    f"lr 1e-03, global_clipnorm=1: final {late_loss('global_clipnorm=1'):.3g}; baseline"
    f" {baseline_mse:.2f}"
)
# before any update, on the same first batch
first_clipped_loss = irnn_runs["global_clipnorm=1"][0][0]
assert all(
    np.isclose(losses[0], first_clipped_loss, rtol=1e-5)
    for losses in small_lr_runs.values()
), "start from the section's initial weights"
# 100 times smaller, still jumps up
assert np.nanmax(small_lr_runs[1e-5]) > 2 * small_lr_runs[1e-5][0], (
    "at learning rate 1e-5 the loss must still rise above twice its first value"
)
# no NaN this time, but it ends answering about 0:
assert np.all(np.isfinite(small_lr_runs[1e-5])), (
    "at learning rate 1e-5 every loss must be finite"
)
assert abs(np.mean(small_lr_runs[1e-5][-20:]) - np.mean(y_count**2)) < 0.2 * np.mean(
    y_count**2
), "at learning rate 1e-5 the run must end within a fifth of the cost of answering 0"
assert (
    np.all(np.isfinite(small_lr_runs[1e-6]))
    and np.mean(small_lr_runs[1e-6][-20:]) < 0.5 * baseline_mse
), (
    "at learning rate 1e-6 the run must survive and learn to count, below half the"
    " baseline"
)

# %% [markdown]
# At $10^{-5}$, a hundred times below the learning rate of the clipped runs, the loss still jumps
# at least twofold above where it started, often by orders of magnitude; it does not reach NaN but
# settles near the cost of answering 0 every time, the mean of the squared count (the jump has most
# likely silenced the ReLU units: a plausible reading, not checked here).
# At $10^{-6}$ the run survives and learns to count, to well below the baseline (compare its final
# loss with the clipped run's, printed above). So a small enough learning rate can work, but you find
# it only by trial, and it must leave room for the largest gradient of the whole run: a spike later in
# training, when the weights reach a steeper region, can still throw it off. With SGD, clipping bounds
# every step, whatever the gradient does (with Adam it keeps a spike's full size out of the running
# averages, section 7), which is why recurrent models are almost always trained with it.
