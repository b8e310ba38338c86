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
# # Chapter 5 — Encoder–decoders and attention
#
# An [encoder-decoder](glossary.md#encoder-decoder) network reads a sequence and writes another one,
# of a different length, in a different alphabet. The classic recurrent version squeezes the whole
# input into the encoder's last state, one fixed-size vector, and the decoder has to write everything
# from it. This chapter trains such a model on a small, controlled translation task, normalising dates
# written in English, German, French and Chinese to the ISO form "2024-03-07", and then removes the
# bottleneck with **[attention](glossary.md#attention)**: at every output step the decoder looks back
# at all the encoder's states and takes a weighted average of them. We write
# [additive](glossary.md#additive-attention) and
# [dot-product attention](glossary.md#dot-product-attention) from scratch and check them against
# Keras, measure what the bottleneck costs, and watch the trained model read the day, the month and
# the year. Chapter 6 takes the same architecture to real sentences (beam search, long inputs,
# alignments against a human reference); chapter 7 lets a sequence attend to itself and builds the
# transformer.
#
# **You will learn to**
# - build a sequence-to-sequence (encoder-decoder) model, train it with
#   [teacher forcing](glossary.md#teacher-forcing) and decode greedily;
# - explain the fixed-vector bottleneck and how attention removes it;
# - write additive (Bahdanau) and dot-product (Luong) attention and reproduce
#   `keras.layers.AdditiveAttention` and `keras.layers.Attention`;
# - read attention weights as an alignment between output and input, and measure it.
#
# **Prerequisites**: chapter 3 (LSTM), chapter 4 (padding and masking); matrix products and the
# softmax.
#
# **Run time**: a few minutes on a 2-core CPU (the README's table has the measured time); not yet
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
            f"no utils/ in {here} or above it, and no BOOK_REPOSITORY to fetch the book from: "
            "open the notebook inside the book, or see 'Colab and Kaggle' in the README"
        )
    print(
        f"fetching the book from {BOOK_REPOSITORY} into {book_root} (on Kaggle: Settings, Internet on)"
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
import re
from collections import Counter

import keras
import matplotlib.pyplot as plt
import numpy as np

from utils.book import EpochLogger, setup_book
from utils.dates import LOCALES, dates_in_split
from utils.seq2seq import (
    INPUT_LENGTH,
    OUTPUT_IDS,
    OUTPUT_LENGTH,
    ValidationExactMatch,
    build_seq2seq,
    compile_and_fit,
    date_task,
    encode_targets,
    greedy_decode,
    to_text,
)

seed = setup_book()
rng = np.random.default_rng(seed)

# %% [markdown]
# ## 1. The task: dates in four languages
#
# `utils.dates` writes dates with the Unicode CLDR data that the Babel package ships, in the "full",
# "long" and "medium" styles of each language, and pairs each text with its ISO date. The dates run
# from 1950 to 2049. The split is fixed and depends only on the date (a checksum of its ISO string
# makes about one date in ten a test date and another one in ten a validation date), so no test or
# validation date is ever seen in training, in any language or style. Training is followed on the
# validation dates; the test dates are used once, at the end. The seed only decides which dates,
# languages and styles are drawn.

# %%
task = date_task(
    seed
)  # utils.seq2seq: the pairs of utils.dates for the three splits, encoded as below
train_texts, train_targets, train_locales = (
    task.train_texts,
    task.train_targets,
    task.train_locales,
)
test_texts, test_targets, test_locales = (
    task.test_texts,
    task.test_targets,
    task.test_locales,
)
print(
    ", ".join(
        f"{len(dates_in_split(split))} {split} dates"
        for split in ("train", "valid", "test")
    ),
    "(1950-2049)",
)
print(
    f"{len(train_texts)} training pairs, {len(task.valid_texts)} validation pairs, {len(test_texts)} test pairs"
)
unseen = set(task.valid_targets) | set(test_targets)
print("validation or test dates seen in training:", len(unseen & set(train_targets)))
print("pairs per language in training:", dict(sorted(Counter(train_locales).items())))

# %% tags=["nbval-ignore-output"]
for locale in LOCALES:
    examples = [
        (text, target)
        for text, target, loc in zip(
            train_texts, train_targets, train_locales, strict=True
        )
        if loc == locale
    ][:3]
    print(
        f"{locale}: " + " | ".join(f"{text!r} -> {target}" for text, target in examples)
    )

# %% [markdown]
# The same date looks very different in each language: the year comes last in English, German and
# French and first in Chinese; months are words (three spellings of March, plus 3月), abbreviations
# or digits; some styles add the weekday. The model has to find the day, the month and the year in
# each layout and write them in a fixed order.
#
# We work with characters. The encoder's input alphabet is every character of the training texts;
# id 0 is padding and id 1 stands for an unknown character. The decoder writes the 11 characters
# `0123456789-`, and gets a start symbol `^` before the first one: in training (section 2) its input
# is the target shifted by one place, the start symbol and then the first nine characters. The code
# lives in `utils/seq2seq.py`, because chapter 7 trains on the same arrays; here is the shift.

# %%
print(inspect.getsource(encode_targets))
x_train, decoder_in_train, y_train = task.x_train, task.decoder_in_train, task.y_train
x_valid, y_valid = task.x_valid, task.y_valid
x_test, decoder_in_test, y_test = task.x_test, task.decoder_in_test, task.y_test
print(
    f"{len(task.input_alphabet)} input characters; longest text: {max(map(len, train_texts))} characters"
)
print(
    "encoder input",
    x_train.shape,
    "| decoder input",
    decoder_in_train.shape,
    "| target",
    y_train.shape,
)
print(
    f"{train_texts[0]!r}: decoder input {to_text(decoder_in_train[0])}, target {to_text(y_train[0])}"
)
print("unknown characters in the test texts:", int((x_test == 1).sum()))

# %% [markdown]
# ## 2. Encoder-decoder with teacher forcing
#
# A sequence-to-sequence model (Sutskever et al., 2014; Cho et al., 2014) is two RNNs. The
# **encoder** reads the input $x_1, \dots, x_S$ and ends in a state $(h_S, c_S)$. The **decoder** is a
# language model over the output alphabet whose initial state is that encoder state: it reads the
# previous output character $y_{t-1}$ and predicts $y_t$,
#
# $$p(y_t \mid y_{<t}, x) = \operatorname{softmax}(W_o\, s_t + b_o), \qquad s_t = \operatorname{LSTM}(s_{t-1}, y_{t-1}),
# \qquad s_0 = (h_S, c_S).$$
#
# This is the many-to-many *asynchronous* pattern: the output starts after the input has been read,
# and its length need not match the input's.
#
# **Teacher forcing.** In training, the decoder's input at step $t$ is the *true* character $y_{t-1}$,
# not the one it predicted: all ten steps are then computed in one pass, and one mistake early in
# training does not derail the rest of the sequence. At test time there is no true character, so the
# decoder reads its own previous prediction (**[greedy decoding](glossary.md#greedy-decoding)**: take
# the most likely character, feed it back, repeat).
#
# **The bottleneck.** Everything the decoder knows about the input is in $s_0$: 64 numbers for the
# hidden state and 64 for the cell state, whatever the length of the input. Let us see how far that
# goes.

# %%
print(inspect.getsource(build_seq2seq))

# %% [markdown]
# The training accuracy is *per character, with teacher forcing*. What counts is the whole date
# written by the model on its own. Greedy decoding runs the model ten times: after each run, the
# character predicted at step $t$ becomes the decoder input at step $t + 1$. Because the decoder is
# causal (step $t$ sees only inputs $\le t$), the still-empty later positions do not affect step $t$.

# %%
print(inspect.getsource(greedy_decode))

# %% [markdown]
# To follow learning, a callback (`ValidationExactMatch`) writes greedily the 500 validation dates
# after each epoch and adds their exact-match rate to the logs as `valid_exact`. Both models train
# with the same settings (`compile_and_fit`): Adam with a learning rate of $2 \cdot 10^{-2}$ and
# gradient clipping, batches of 256, three epochs. The attention branch of `build_seq2seq` is for
# section 4; without it the decoder sees only the final encoder state.

# %%
plain_model, _ = build_seq2seq(len(task.input_ids) + 2, with_attention=False)
print(f"seq2seq without attention: {plain_model.count_params()} parameters")

# %% tags=["nbval-ignore-output"]
exact_curves = {}
_, exact_curves["LSTM seq2seq"] = compile_and_fit(plain_model, "no attention", task)

# %% tags=["nbval-ignore-output"]
predictions = {"LSTM seq2seq": greedy_decode(plain_model, x_test)}
exact = {
    name: (predicted == y_test).all(axis=1) for name, predicted in predictions.items()
}
print(
    f"without attention: exact match on {len(y_test)} held-out dates {exact['LSTM seq2seq'].mean():.1%}"
)
for index in np.flatnonzero(~exact["LSTM seq2seq"])[:4]:
    written_text = to_text(predictions["LSTM seq2seq"][index])
    print(
        f"  {test_texts[index]!r}: wrote {written_text}, expected {test_targets[index]}"
    )

# %%
iso_date = re.compile(r"\d{4}-\d{2}-\d{2}")
badly_formed = sum(
    not iso_date.fullmatch(to_text(ids)) for ids in predictions["LSTM seq2seq"]
)
print(f"outputs not of the form dddd-dd-dd: {badly_formed} of {len(y_test)}")
assert badly_formed == 0, "the model without attention should have learned the format"

# %% [markdown]
# The model without attention has learned the format on every test date (four digits, dash, two,
# dash, two), and how many dates it gets right after three epochs depends a lot on the seed. Its
# mistakes are typical of the bottleneck: a digit comes out wrong, a fact that did not survive the
# squeeze into one vector. Section 4 counts which digits, after building attention.
#
# ## 3. Attention: look back at every input position
#
# Keep *all* encoder states $k_1, \dots, k_S$ (the **keys**, here also the **values** $v_j = k_j$). At
# decoder step $t$, with decoder state $q_t$ (the **[query](glossary.md#query)**), score every input
# position, turn the scores into weights with a softmax over the positions, and average:
#
# $$e_{tj} = \operatorname{score}(q_t, k_j), \qquad \alpha_{tj} = \frac{\exp e_{tj}}{\sum_{j'} \exp e_{tj'}},
# \qquad c_t = \sum_j \alpha_{tj}\, v_j .$$
#
# The **[context vector](glossary.md#context-vector)** $c_t$ is a different summary of the input for
# each output step, and the **attention weights** $\alpha_{t\cdot}$ say where the decoder looked. Two
# scores are classic:
#
# - **additive** (Bahdanau et al., 2015): a one-hidden-layer network,
#   $e_{tj} = w^\top \tanh(W_q q_t + W_k k_j)$;
# - **dot-product** (Luong et al., 2015): $e_{tj} = q_t^\top k_j$ (Luong's "general" form puts a matrix
#   between them, $q_t^\top W k_j$).
#
# Padding positions must get no weight: their scores are set to $-\infty$ (in practice a large negative
# number) before the softmax. Here are both, in NumPy, for a batch.


# %%
def softmax(scores, axis=-1):
    scores = scores - scores.max(axis=axis, keepdims=True)
    return np.exp(scores) / np.exp(scores).sum(axis=axis, keepdims=True)


def attend(scores, values, value_mask=None):
    """Masked softmax over the positions of the values, then the weighted average; returns (context, weights)."""
    if value_mask is not None:
        scores = np.where(value_mask[:, None, :], scores, -1e9)
    weights = softmax(scores)
    return weights @ values, weights


def dot_product_attention(queries, keys, values, value_mask=None):
    """Luong: score = q . k; queries (B, T, d), keys and values (B, S, d)."""
    return attend(queries @ keys.transpose(0, 2, 1), values, value_mask)


def additive_attention(queries, keys, values, W_q, W_k, w, value_mask=None):
    """Bahdanau: score = w . tanh(q W_q + k W_k), computed for every (query, key) pair by broadcasting."""
    hidden = np.tanh(
        (queries @ W_q)[:, :, None, :] + (keys @ W_k)[:, None, :, :]
    )  # (B, T, S, units)
    return attend(hidden @ w, values, value_mask)


# %% [markdown]
# Keras has both as layers. `keras.layers.Attention` is the dot-product form.
# `keras.layers.AdditiveAttention` computes $\sum_i w_i \tanh(q_i + k_i)$, with a learned vector $w$
# (its `scale`) and *without* the matrices $W_q, W_k$: it expects queries and keys that have already
# been projected, for example by `Dense` layers. We check both with random numbers and a value mask
# that hides the last positions of the second sequence.

# %%
queries = rng.normal(size=(2, 4, 6)).astype("float32")
keys = rng.normal(size=(2, 7, 6)).astype("float32")
value_mask = np.ones((2, 7), dtype=bool)
value_mask[1, 5:] = False
context_keras, weights_keras = keras.layers.Attention()(
    [queries, keys], mask=[None, value_mask], return_attention_scores=True
)
context_numpy, weights_numpy = dot_product_attention(queries, keys, keys, value_mask)
print(
    "dot-product attention agrees with keras.layers.Attention:",
    np.allclose(context_numpy, context_keras, atol=1e-5),
    np.allclose(weights_numpy, weights_keras, atol=1e-6),
)
print(
    "weight on the masked positions:",
    float(np.abs(np.asarray(weights_keras)[1, :, 5:]).max()),
)
assert np.allclose(context_numpy, context_keras, atol=1e-5) and np.allclose(
    weights_numpy, weights_keras, atol=1e-6
), "our NumPy dot-product attention matches keras.layers.Attention"
assert np.abs(np.asarray(weights_keras)[1, :, 5:]).max() < 1e-12, (
    "masked positions get no weight"
)

# %%
W_q, W_k = (
    rng.normal(size=(6, 5)).astype("float32"),
    rng.normal(size=(6, 5)).astype("float32"),
)
w = rng.normal(size=5).astype("float32")
keras_additive = keras.layers.AdditiveAttention()
keras_additive(
    [queries @ W_q, keys, keys @ W_k], mask=[None, value_mask]
)  # creates the `scale` weight
keras_additive.set_weights([w])
context_keras, weights_keras = keras_additive(
    [queries @ W_q, keys, keys @ W_k],
    mask=[None, value_mask],
    return_attention_scores=True,
)
context_numpy, weights_numpy = additive_attention(
    queries, keys, keys, W_q, W_k, w, value_mask
)
print(
    "additive attention agrees with keras.layers.AdditiveAttention:",
    np.allclose(context_numpy, context_keras, atol=1e-5),
    np.allclose(weights_numpy, weights_keras, atol=1e-6),
)
assert np.allclose(context_numpy, context_keras, atol=1e-5) and np.allclose(
    weights_numpy, weights_keras, atol=1e-6
), "our NumPy additive attention matches keras.layers.AdditiveAttention"

# %% [markdown]
# Keras takes the inputs in the order `[query, value, key]`, which is why the second call passes the
# raw `keys` as values and the projected keys as keys. Both layers have no weight matrices of their
# own; in a model, the projections are learned by the layers around them (here: the LSTMs whose
# states are the queries and keys).
#
# ## 4. The encoder-decoder with attention
#
# The model of section 2 plus one `keras.layers.Attention`: the decoder's states are the queries, the
# encoder's states are keys and values, and the output layer reads $[s_t; c_t]$, the decoder state
# next to its context vector. The embedding's padding mask flows into the attention layer, so padding
# positions get no weight. Same training settings as before. This is Luong et al.'s (2015) arrangement
# (the query is the decoder's current state, and $[s_t; c_t]$ goes to the output, here without their
# extra $\tanh$ layer); Bahdanau et al. (2015) query with the previous state, feed the context into the
# decoder's recurrence and read the input with a bidirectional encoder (chapter 4).

# %%
attention_model, attention_weights_model = build_seq2seq(
    len(task.input_ids) + 2, with_attention=True
)
print(
    f"seq2seq with attention: {attention_model.count_params()} parameters "
    f"({attention_model.count_params() - plain_model.count_params()} more than without)"
)

# %% tags=["nbval-ignore-output"]
_, exact_curves["LSTM seq2seq + attention"] = compile_and_fit(
    attention_model, "attention", task
)
predictions["LSTM seq2seq + attention"] = greedy_decode(attention_model, x_test)
exact["LSTM seq2seq + attention"] = (
    predictions["LSTM seq2seq + attention"] == y_test
).all(axis=1)
for name, correct in exact.items():
    print(
        f"{name:>25}: exact match {correct.mean():.2%} on {len(correct)} held-out dates"
    )

# %%
plain_curve = np.array(exact_curves["LSTM seq2seq"])
attention_curve = np.array(exact_curves["LSTM seq2seq + attention"])
assert exact["LSTM seq2seq + attention"].mean() >= 0.95, (
    "attention should write at least 95% of the dates exactly"
)
assert attention_curve.mean() > plain_curve.mean() + 0.15, (
    "attention should learn clearly faster"
)
assert attention_curve[0] > plain_curve[0] + 0.2, (
    "and be far ahead after the first epoch"
)

# %%
fig, ax = plt.subplots()
for name, curve in exact_curves.items():
    ax.plot(range(1, len(curve) + 1), 100 * np.array(curve), "o-", label=name)
ax.set(
    xlabel="epoch",
    ylabel="exact match on 500 validation dates (%)",
    xticks=[1, 2, 3],
    title="Greedy decoding after each epoch: the same LSTMs, with and without attention",
)
ax.legend()
plt.show()

# %% [markdown]
# With 768 more parameters (the output layer reads 64 more numbers) and the same three epochs, the
# attention model writes at least 95% of the held-out dates exactly (usually all of them). The curves
# show where the difference is: after a single epoch the attention model is already at least 20 points
# ahead, and the model without attention catches up only over the following epochs (the asserts: 20
# points after the first epoch, 15 points on the mean of the three; section 4's last cell trains it
# on). Where does the model without attention fail after three epochs? The table splits the test dates
# by language and by input length.

# %% tags=["nbval-ignore-output"]
test_lengths = np.array([len(text) for text in test_texts])
groups = {locale: np.array(test_locales) == locale for locale in LOCALES}
groups |= {
    "< 15 chars": test_lengths < 15,
    "15-21 chars": (test_lengths >= 15) & (test_lengths < 22),
    ">= 22 chars": test_lengths >= 22,
}
print(f"{'group':>12} {'pairs':>6} {'no attention':>13} {'attention':>10}")
for group, selected in groups.items():
    print(
        f"{group:>12} {selected.sum():>6} {exact['LSTM seq2seq'][selected].mean():>13.1%} "
        f"{exact['LSTM seq2seq + attention'][selected].mean():>10.1%}"
    )
wrong_characters = predictions["LSTM seq2seq"] != y_test
field_positions = {
    "year": slice(0, 4),
    "month": slice(5, 7),
    "day": slice(8, 10),
}  # in yyyy-mm-dd
field_error = {
    group: {
        field: float(wrong_characters[selected][:, where].any(axis=1).mean())
        for field, where in field_positions.items()
    }
    for group, selected in groups.items()
}
print("no attention, share of the test dates with the field wrong:")
for group in LOCALES:
    print(
        f"{group:>12}",
        "  ".join(f"{field} {rate:.3f}" for field, rate in field_error[group].items()),
    )
# the same model fed the true date as its decoder input (teacher forcing) instead of its own characters
true_prefix_predictions = plain_model.predict(
    [x_test, decoder_in_test], batch_size=500, verbose=0
).argmax(axis=-1)
true_prefix_wrong = true_prefix_predictions != y_test
field_error_by_input = {
    decoder_input: {
        field: float(wrong[:, where].any(axis=1).mean())
        for field, where in field_positions.items()
    }
    for decoder_input, wrong in (
        ("own characters", wrong_characters),
        ("true prefix", true_prefix_wrong),
    )
}
for decoder_input, rates in field_error_by_input.items():
    print(
        f"all dates, {decoder_input:>14} fed back:",
        "  ".join(f"{f} {rate:.3f}" for f, rate in rates.items()),
    )

# %%
exact_by_locale = {
    locale: exact["LSTM seq2seq + attention"][groups[locale]].mean()
    for locale in LOCALES
}
all_dates, true_prefix = (
    field_error_by_input["own characters"],
    field_error_by_input["true prefix"],
)
print(
    "attention, exact match in the worst language at least 90%:",
    min(exact_by_locale.values()) >= 0.9,
)
print(
    "no attention, fields wrong in the order they are written (year < month < day):",
    all_dates["year"] < all_dates["month"] < all_dates["day"],
)
assert min(exact_by_locale.values()) >= 0.9, (
    "attention should write nearly every date in every language"
)
assert (
    all_dates["year"] < 0.5 * all_dates["month"]
    and all_dates["month"] < all_dates["day"]
), "later, more wrong"
chained_day_errors = (
    all_dates["day"] - true_prefix["day"]
)  # day errors that the true prefix removes
assert chained_day_errors > 0.1 * all_dates["month"], (
    "fed its own wrong months, the model gets more days wrong: the true prefix removes day errors"
)
assert true_prefix["year"] < 0.5 * true_prefix["month"], (
    "with the true prefix, no chaining: the year still has under half the month's error rate"
)
assert all(
    field_error[locale]["year"] <= field_error[locale]["month"]
    and field_error[locale]["year"] < field_error[locale]["day"]
    for locale in LOCALES
), "the year is the least wrong in every language"

# %% [markdown]
# Read the table with the inputs in mind. On dates this short the errors of the model without
# attention need not grow with the length of the text: the longest texts are the "full" style, whose
# weekday adds characters but no new facts, and even 30 characters fit comfortably in 128 numbers.
# (Bahdanau et al. saw the bottleneck hurt most on sentences of 30 words and more; our inputs are
# much shorter.) The attention model writes at least 90% of the dates exactly in each of the four
# languages. The last lines tell more about the model without attention: the later a field is
# written, the more often it is wrong. The year, written first, is wrong on fewer dates than half the
# month's share, and the month on fewer than the day, written last (asserted); the year is the least
# wrong in every language (asserted), also in Chinese, whose input starts with the year, so it is not
# the part of the input read last that survives best. Two mechanisms could produce that order. The
# state decays: the decoder starts from the encoder's final state, and what it has not written yet
# must survive every step it has already taken. And errors chain: a wrong month, fed back as the next
# input, can derail the day (the [exposure bias](glossary.md#exposure-bias) of chapter 6). The last
# two lines separate them: the same model fed the *true* date as its decoder input (teacher forcing,
# one `predict`), so that no error of its own is fed back. With the true prefix the day is wrong on
# fewer dates (asserted: the drop is more than a tenth of the share of dates whose month was wrong):
# wrong months take days down with them, so some of the greedy day errors are chained. How many
# varies much from seed to seed (exercise 4 measures it on the dates with a wrong month), and so does
# how many day errors remain; with the true prefix the book asserts no order between the month and
# the day. What remains without chaining is the year below half the month (asserted): that is what
# the decay reading predicts, though it does not prove it (the month may simply be harder to read
# than the year).
#
# On this task the cost of the bottleneck is *slower learning*: the model must learn to pack
# every fact into one vector and to unpack it again, while the attention model reads each fact where
# it is. To check that it is slower and not unable, the model without attention trains for two more
# epochs, with the same optimiser, and is scored after each on the validation dates.

# %% tags=["nbval-ignore-output"]
more_epochs = ValidationExactMatch(x_valid, y_valid)
plain_model.fit(
    [x_train, decoder_in_train],
    y_train,
    initial_epoch=3,
    epochs=5,
    batch_size=256,
    verbose=0,
    callbacks=[more_epochs, EpochLogger(1, "no attention, trained on")],
)
print(
    "no attention, validation exact match after epochs 4 and 5:",
    np.round(more_epochs.history, 3),
)

# %%
assert more_epochs.history[-1] >= 0.9, (
    "given two more epochs, the bottleneck model writes most dates exactly"
)

# %% [markdown]
# ## 5. What the model looks at
#
# The attention weights are the model's alignment between output and input. The second model that
# `build_seq2seq` returned shares the layers of the trained model and outputs the weights
# $\alpha_{tj}$. We feed it every test date with the model's own output as decoder input (what greedy
# decoding saw), and draw one date of each language.

# %%
written_all = predictions["LSTM seq2seq + attention"]
start_symbols = np.full((len(x_test), 1), OUTPUT_IDS["^"], dtype="int32")
alignment_all = attention_weights_model.predict(
    [x_test, np.concatenate([start_symbols, written_all[:, :-1]], axis=1)],
    batch_size=500,
    verbose=0,
)  # every test date; section 5 uses them all
examples = [test_locales.index(locale) for locale in LOCALES]
written, alignment = written_all[examples], alignment_all[examples]
text_lengths = [len(test_texts[example]) for example in examples]
padding_weight = max(
    float(weights[:, length:].max())
    for weights, length in zip(alignment, text_lengths, strict=True)
)
print(
    "attention weights:", alignment.shape, "(examples, output steps, input positions)"
)
print("rows sum to 1:", np.allclose(alignment.sum(axis=-1), 1, atol=1e-5))
print("largest weight on a padding position below 1e-6:", padding_weight < 1e-6)
assert np.allclose(alignment.sum(axis=-1), 1, atol=1e-5) and padding_weight < 1e-6, (
    "in the four dates shown, each row of weights sums to 1 and padding gets below 1e-6"
)

# %%
# The book's fonts have no Chinese characters: the figure shows them in pinyin.
pinyin = {
    "年": "nián",
    "月": "yuè",
    "日": "rì",
    "星": "xīng",
    "期": "qī",
    "一": "yī",
    "二": "èr",
    "三": "sān",
    "四": "sì",
    "五": "wǔ",
    "六": "liù",
}
fig, axes = plt.subplots(2, 2, figsize=(12, 6.5))
for ax, example, weights_row, output in zip(
    axes.ravel(), examples, alignment, written, strict=True
):
    text = test_texts[example]
    ax.imshow(weights_row, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.axvline(
        len(text) - 0.5, color="white", ls="--", lw=1
    )  # padding to the right of the line
    ax.set_xticks(
        range(INPUT_LENGTH),
        [pinyin.get(char, char) for char in text] + ["·"] * (INPUT_LENGTH - len(text)),
        fontsize=8,
        rotation=90 if test_locales[example] == "zh" else 0,
    )
    ax.set_yticks(range(OUTPUT_LENGTH), list(to_text(output)))
    ax.set_xlabel("input character (·: padding)")
    ax.set_ylabel("output character")
    shown_text = "".join(
        pinyin.get(char, char) + " " * (char in pinyin) for char in text
    )
    ax.set_title(f"{test_locales[example]}: {shown_text}", fontsize=10)
    ax.grid(False)
fig.suptitle("Attention weights of the LSTM seq2seq: where each output character looks")
plt.show()

# %% [markdown]
# The padding positions, right of the dashed line, are dark in every row: the mask gives them no
# weight (below $10^{-6}$ in these four dates, asserted above). Look for the alignment in each panel:
# the rows of the year digits put their weight on the four digits of the year in the input, wherever
# the language writes them (at the end in English, German and French, at the start in Chinese); in
# these panels the month's second digit looks at the month name or its digits (its first digit, 0 or
# 1, is often read elsewhere), the day rows at the day. The weights are often shifted by a character
# or spread over two neighbours, because each encoder state has read the characters before it, so
# "the state after the 9" already knows the 9. The rows of the two dashes are often among the least
# sharp: the dash is the same in every date and needs no input.
#
# Four panels from one trained model are anecdotes. The year's reading can be measured on every test
# date: find the four digits of the year in the input text, and sum the weight that each of the four
# year rows puts on them and on the character just before and just after them (the shift above). A
# model that spread its weight evenly over a text of $L$ characters would put about $6/L$ of it there
# (the code takes the window's width, 6, or 5 when the year starts the text).


# %%
def year_window(text):
    """Input positions of the year's four digits, widened by one character on each side."""
    start, end = re.search(r"\d{4}", text).span()
    return slice(max(start - 1, 0), end + 1)


year_mass = np.array(
    [
        weights[:4, year_window(text)].sum(axis=1).mean()
        for weights, text in zip(alignment_all, test_texts, strict=True)
    ]
)
even_mass = np.array(
    [
        (year_window(text).stop - year_window(text).start) / len(text)
        for text in test_texts
    ]
)
year_mass_by_locale = {locale: year_mass[groups[locale]].mean() for locale in LOCALES}
print("weight of the year rows on the year (+-1 character), mean over the test dates:")
for locale in LOCALES:
    print(
        f"  {locale}: more than half: {year_mass_by_locale[locale] > 0.5}; more than an even spread: "
        f"{year_mass_by_locale[locale] > even_mass[groups[locale]].mean()}"
    )
assert all(
    year_mass_by_locale[locale] > max(0.5, even_mass[groups[locale]].mean())
    for locale in LOCALES
), (
    "in every language the year rows put over half their weight on the year, above an even spread"
)

# %% tags=["nbval-ignore-output"]
print(
    " ".join(
        f"{locale}: {year_mass_by_locale[locale]:.2f} (even spread {even_mass[groups[locale]].mean():.2f})"
        for locale in LOCALES
    )
)

# %% [markdown]
# In every language, the year rows put more than half of their weight on the year and its two
# neighbours, more than an even spread over the text would give: the model has learned where each
# language writes the year. That is the assert above, over all test dates; the four panels and the
# reading of the month and day rows are one seed's pictures.

# %% [markdown]
# ## 6. Pitfalls
#
# - **Teacher forcing hides errors.** The training accuracy is per character with the true previous
#   character as input; the model must then decode on its own. Always report exact match with greedy
#   (or beam) decoding, as we did.
# - **Attending to padding.** Without a padding mask the softmax puts weight on padding positions.
#   Keras propagates `mask_zero=True` masks into `Attention`; a layer fed raw tensors needs the mask
#   passed explicitly (chapter 7 builds one for `MultiHeadAttention`).
# - **Argument order.** Keras's `Attention` and `AdditiveAttention` take `[query, value, key]`, with the
#   key defaulting to the value.
# - **Reading a heat map as a proof.** The weights of four dates are anecdotes, and they are often
#   shifted by a character because each encoder state has read the characters before it. Measure the
#   alignment over all test dates (section 5) before drawing a conclusion from it.
# - **Short inputs flatter the bottleneck.** On dates a dozen characters long the model without
#   attention only learns more slowly; on long sentences the fixed vector costs accuracy, and a
#   greedy decoder's first error derails the rest. Chapter 6 measures both on real text, with beam
#   search.

# %% [markdown]
# ## 7. Summary
#
# - An encoder-decoder (seq2seq) maps a sequence to a sequence of another length; it trains with
#   teacher forcing and writes with greedy decoding. Without attention, the whole input must pass
#   through one fixed-size vector.
# - Attention scores every encoder state against the decoder's state, softmaxes the scores and averages
#   the states: additive $w^\top \tanh(W_q q + W_k k)$ or dot-product $q^\top k$. With it our LSTM
#   seq2seq wrote at least 95% of held-out dates exactly (at least 90% in each of four languages), and
#   learned much faster than the same model without attention, which needed more epochs to catch up.
# - The later a field is written by the model without attention, the more often it is wrong; some of
#   the day errors are chained through a wrong month fed back.
# - The attention weights align output with input: the year rows put most of their weight on the year,
#   wherever each language writes it (measured on every test date).

# %% [markdown]
# ## 8. Exercises
#
# 1. **Luong's "general" score.** Compute the scores $e_{tj} = q_t^\top W k_j$ of section 3's `queries`
#    and `keys` with `W_general`, turn them into `context_general` with our `attend` (padding masked
#    with `value_mask`), and check it against `keras.layers.Attention` applied to projected queries.
# 2. **Where do chained errors come from?** Take the test dates whose month the model without
#    attention wrote wrong when writing on its own (section 4's `wrong_characters`). On those dates,
#    what share has a wrong day when it writes on its own, and what share when it is fed the true
#    prefix (section 4's `true_prefix_wrong`)? Compute `day_wrong_after_wrong_month`, a dictionary
#    from "own characters" and "true prefix" to the two shares. How much of the day's trouble on these
#    dates comes from the wrong month fed back, and how much from the dates themselves (compare with
#    the day's error rate on all dates with the true prefix)?
# 3. **How sharp is each output row?** From the attention weights of every test date (section 5's
#    `alignment_all`), compute `row_entropy`, an array of ten numbers: for each output position, the
#    mean over the test dates of the entropy of its row of weights, $-\sum_j \alpha_{tj} \ln
#    \alpha_{tj}$ in nats (with $0 \ln 0 = 0$). An even spread over a text of $L$ characters has the
#    entropy $\ln L$. Which output rows are the sharpest, and which the least sharp?

# %% tags=["solution"]
# Exercise 1: write your answer where the solution markers are.
W_general = rng.normal(size=(6, 6)).astype("float32")
### BEGIN SOLUTION
# the general score q W k^T written out with einsum, then the masked softmax; Keras's Attention
# on the projected queries q W must give the same context, since q W k^T = (q W) k^T.
general_scores = np.einsum("btd,de,bse->bts", queries, W_general, keys)
context_general, _ = attend(general_scores, keys, value_mask)
### END SOLUTION

# %% tags=["check"]
context_keras = keras.layers.Attention()(
    [queries @ W_general, keys], mask=[None, value_mask]
)
print("general score agrees:", np.allclose(context_general, context_keras, atol=1e-4))
assert np.allclose(context_general, context_keras, atol=1e-4), (
    "context_general must match keras.layers.Attention on the projected queries q W"
)


# %% tags=["solution"]
# Exercise 2: write your answer where the solution markers are.
### BEGIN SOLUTION
# ISO dates: the month is characters 5-6, the day 8-9; a field is wrong if any of its digits is.
month_wrong = wrong_characters[:, 5:7].any(axis=1)  # written on its own
day_wrong_after_wrong_month = {
    "own characters": float(wrong_characters[month_wrong, 8:10].any(axis=1).mean()),
    "true prefix": float(true_prefix_wrong[month_wrong, 8:10].any(axis=1).mean()),
}
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
print(
    "dates whose month was written wrong, share with a wrong day:",
    {fed: f"{rate:.1%}" for fed, rate in day_wrong_after_wrong_month.items()},
    f"| all dates, true prefix: {true_prefix['day']:.1%}",
)
own_texts = [to_text(ids) for ids in predictions["LSTM seq2seq"]]
true_prefix_texts = [to_text(ids) for ids in true_prefix_predictions]
month_bad = np.array(
    [
        own[5:7] != target[5:7]
        for own, target in zip(own_texts, test_targets, strict=True)
    ]
)
for fed, texts in (("own characters", own_texts), ("true prefix", true_prefix_texts)):
    day_bad = np.array(
        [
            text[8:10] != target[8:10]
            for text, target in zip(texts, test_targets, strict=True)
        ]
    )
    assert np.isclose(day_wrong_after_wrong_month[fed], day_bad[month_bad].mean()), (
        f"{fed}: on the wrong-month dates"
    )

# %% tags=["solution"]
# Exercise 3: write your answer where the solution markers are.
### BEGIN SOLUTION
# 0 ln 0 is 0: where a weight is 0, take the log of 1 instead (the product is 0 either way).
log_weights = np.log(np.where(alignment_all > 0, alignment_all, 1.0))
row_entropy = -(alignment_all * log_weights).sum(axis=-1).mean(axis=0)
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
reference = np.zeros(OUTPUT_LENGTH)
for weights, text in zip(alignment_all, test_texts, strict=True):
    visible = weights[:, : len(text)]  # padding has no weight (asserted in section 5)
    reference += -np.sum(
        visible * np.log(np.clip(visible, 1e-30, None)), axis=-1
    ) / len(alignment_all)
print("mean entropy per output row:", np.round(row_entropy, 2))
print(
    f"an even spread over the mean text length: {np.log([len(text) for text in test_texts]).mean():.2f}"
)
print(
    "output rows from the sharpest to the least sharp:", list(np.argsort(row_entropy))
)
assert np.shape(row_entropy) == (OUTPUT_LENGTH,), (
    "row_entropy has one value per output position"
)
assert np.allclose(row_entropy, reference, atol=1e-4), (
    "row_entropy[t] is the mean over the test dates of -sum_j alpha_tj ln alpha_tj"
)
