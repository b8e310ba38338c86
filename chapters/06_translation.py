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
# # Chapter 6 — Machine translation on real parallel text
#
# Chapter 5 built an encoder–decoder with attention on dates, whose inputs are a dozen characters
# long; there a single context vector was enough, and the famous weakness of the fixed-size context
# could only be cited. Here the inputs are real sentences: verses of the New Testament in the
# Reina-Valera Spanish of 1909 and in the modern World English Bible, both in the public domain. We
# translate Spanish into English with one encoder design and two decoders, trained on the same data
# with the same budget: one that sees a fixed summary of the source, and one that attends to every
# source word with its current state, as Luong, Pham and Manning (2015) do. The decoder of
# Bahdanau, Cho and Bengio (2015), which attends with its previous state, is built and checked
# beside them. Both Bibles tag their words with the number of the Greek word they translate
# (Strong's numbers), which gives a **[reference word alignment](glossary.md#word-alignment)** to
# check the attention against, and a classic word aligner to compare it with.
#
# **You will learn to**
# - prepare a parallel corpus: tokens, a split by book, word vocabularies and unknown words, and
#   [subword units](glossary.md#byte-pair-encoding) learned with byte-pair encoding, written from
#   scratch and checked against `sentencepiece`;
# - build encoder–decoders with a fixed context and with additive attention queried by the current or
#   the previous decoder state, train them with teacher forcing on batches bucketed by length, and
#   with a validation book for early stopping;
# - decode greedily and with [beam search](glossary.md#beam-search), carrying the decoder state one
#   step at a time;
# - score translations with `sacrebleu` ([chrF](glossary.md#chrf) and [BLEU](glossary.md#bleu))
#   against a dictionary and a source-blind baseline, and test differences with a paired bootstrap;
# - look for the bottleneck of a fixed context by sentence length;
# - measure how well attention weights align words with the
#   [alignment error rate](glossary.md#alignment-error-rate), against sure and possible reference links,
#   and against [IBM Model 1](glossary.md#ibm-model-1), a word aligner trained by
#   [expectation maximisation](glossary.md#expectation-maximisation).
#
# **Prerequisites**: chapter 3 (GRU), chapter 4 (bidirectional RNNs, masking, bucketing), chapter 5
# (encoder–decoder, teacher forcing, additive attention, [exposure bias](glossary.md#exposure-bias)).
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
import io
from collections import Counter

import keras
import matplotlib.pyplot as plt
import numpy as np
import sacrebleu
import sentencepiece
import tensorflow as tf
from sacrebleu.significance import PairedTest

from utils.book import EpochLogger, gpu_available, setup_book
from utils.data import load_parallel_verses

seed = setup_book()
layers = keras.layers

# %% [markdown]
# ## 1. The parallel verses
#
# `load_parallel_verses` gives each verse as tokens (words and punctuation marks) in both
# languages, with the links between tokens that carry the same Strong's number. The split is by
# book, so no verse of the test book is seen in training: the test book is the Gospel of John (the
# other gospels share many passages with each other, John few), and Romans is the validation book,
# which early stopping reads. We keep the verses of at most 40 tokens on both
# sides, in all three books, so the models are trained on the lengths they are tested on (the
# filter reads the English side too, so a few of John's verses are left out for the length of their
# reference). Everything is lowercased.

# %%
max_tokens = 40


def verses_up_to(split, length=max_tokens):
    return [
        v
        for v in load_parallel_verses(split)
        if len(v.english) <= length and len(v.spanish) <= length
    ]


def lowercase(tokens):
    return [token.lower() for token in tokens]


train_verses, valid_verses, test_verses = (
    verses_up_to("train"),
    verses_up_to("valid"),
    verses_up_to("test"),
)
print(
    f"{len(train_verses)} training verses, {len(valid_verses)} validation verses"
    f" (Romans), {len(test_verses)} test verses (John), all of at most {max_tokens}"
    " tokens on both sides"
)
example = next(v for v in test_verses if (v.chapter, v.verse) == (1, 1))
print("John 1:1 |", " ".join(example.spanish), "|", " ".join(example.english))
print("links (English index - Spanish index):", example.links[:8], "...")
assert {v.book for v in test_verses} == {"John"} and {v.book for v in valid_verses} == {
    "Romans"
}, "the test book is John and the validation book is Romans"
assert not {"John", "Romans"} & {v.book for v in train_verses}, (
    "no verse of John or Romans is among the training verses"
)

# %% [markdown]
# ## 2. Words, unknown words and subwords
#
# A network has one embedding row and one output for every entry of its vocabulary, so the
# vocabulary must be finite. The classic choice keeps every word seen at least a few times in
# training and maps the others to one `<unk>` symbol. The two vocabularies do not cost the same: the
# Spanish one is only an embedding table, looked up once per word, while the English one is the
# width of the output layer, whose softmax every target position pays for in every training step. We
# keep the Spanish words seen at least 5 times and the English words seen at least 15 times. Four ids
# are reserved: padding, unknown, start and end of a sentence. How much of John does that lose?

# %%
PAD, UNK, START, END = 0, 1, 2, 3


def make_vocabulary(sentences, min_count):
    counts = Counter(word for sentence in sentences for word in sentence)
    words = ["<pad>", "<unk>", "<s>", "</s>"] + sorted(
        w for w, n in counts.items() if n >= min_count
    )
    return words, {word: index for index, word in enumerate(words)}


min_counts = {"spanish": 5, "english": 15}
vocabulary = {
    language: make_vocabulary(
        [lowercase(getattr(v, language)) for v in train_verses], min_count
    )
    for language, min_count in min_counts.items()
}
spanish_words, spanish_ids = vocabulary["spanish"]
english_words, english_ids = vocabulary["english"]
unknown_share = {
    language: float(
        np.mean(
            [
                token not in vocabulary[language][1]
                for v in test_verses
                for token in lowercase(getattr(v, language))
            ]
        )
    )
    for language in min_counts
}
for language, min_count in min_counts.items():
    print(
        f"{language}: {len(vocabulary[language][0]):,} ids (words seen at least"
        f" {min_count} times); {unknown_share[language]:.1%} of John's tokens are"
        " unknown"
    )
john_unknown = Counter(
    token
    for v in test_verses
    for token in lowercase(v.spanish)
    if token not in spanish_ids
)
print(
    "the most frequent unknown Spanish words of John:",
    [word for word, _ in john_unknown.most_common(8)],
)

# %% [markdown]
# Among the unknown words are names and rare forms (printed), often the words that matter most in a
# verse.
# **Byte-pair encoding** (BPE; Sennrich, Haddow & Birch, 2016) removes the problem: start from single
# characters, with every word marked at its start (sentencepiece's `▁`; Sennrich et al. mark its end
# instead, which changes the pieces, not the algorithm), and repeatedly merge the
# most frequent pair of adjacent symbols in the training words into a new symbol. After a few
# thousand merges frequent words are single symbols and rare words are spelt in pieces, so nothing is
# unknown but characters never seen in training. The learner in a few lines, on word counts:

# %%
WORD_START = "\u2581"  # "▁", sentencepiece's mark of a word's first symbol


def merge_pair(symbols, pair):
    """The symbols of a word with every occurrence of `pair`, left to right, replaced by
    their concatenation."""
    merged, k = [], 0
    while k < len(symbols):
        if symbols[k : k + 2] == pair:
            merged.append(pair[0] + pair[1])
            k += 2
        else:
            merged.append(symbols[k])
            k += 1
    return tuple(merged)


def learn_merges(word_counts, num_merges):
    """Byte-pair encoding (Sennrich et al., 2016): merge the most frequent adjacent pair
    of symbols, counted over the training words weighted by their counts, num_merges
    times (ties: the smaller pair)."""
    words = {tuple(WORD_START + word): count for word, count in word_counts.items()}
    merges = []
    for _ in range(num_merges):
        pair_counts = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pair_counts[pair] += count
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        merges.append(best)
        words = {merge_pair(symbols, best): count for symbols, count in words.items()}
    return merges


def segment(word, merges):
    """A new word's pieces: the learned merges applied in the order they were
    learned."""
    symbols = tuple(WORD_START + word)
    for pair in merges:
        symbols = merge_pair(symbols, pair)
    return symbols


spanish_train_sentences = [" ".join(lowercase(v.spanish)) for v in train_verses]
spanish_word_counts = Counter(
    word for sentence in spanish_train_sentences for word in sentence.split()
)
merges = learn_merges(spanish_word_counts, 100)
print("the first ten merges:", ["".join(pair) for pair in merges[:10]])
print(
    "John 1:1 in pieces:",
    " ".join(" ".join(segment(word, merges)) for word in lowercase(example.spanish)),
)

# %% [markdown]
# `sentencepiece` (Kudo & Richardson, 2018), a library kept by Google, implements the same algorithm
# in C++ (`model_type="bpe"`). Trained on the same sentences with the same number of merges, it
# should cut John's words the same way (over 99% of the tokens, asserted). Its vocabulary counts
# everything: our four reserved ids, one id per character, and one per merge.


# %%
def train_bpe(sentences, vocabulary_size):
    """A sentencepiece BPE model trained in memory on whitespace-tokenised sentences,
    with our reserved ids."""
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocabulary_size,
        character_coverage=1.0,
        normalization_rule_name="identity",
        pad_id=PAD,
        unk_id=UNK,
        bos_id=START,
        eos_id=END,
        num_threads=1,
        minloglevel=2,
    )
    return sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())


alphabet = {WORD_START} | {char for word in spanish_word_counts for char in word}
library_bpe = train_bpe(spanish_train_sentences, 4 + len(alphabet) + len(merges))
john_spanish = [lowercase(v.spanish) for v in test_verses]
john_words = [word for verse in john_spanish for word in verse]
agreement = np.mean(
    [
        segment(word, merges) == tuple(library_bpe.encode(word, out_type=str))
        for word in john_words
    ]
)
print(
    f"the same pieces as sentencepiece on {agreement:.2%} of John's {len(john_words):,}"
    " Spanish tokens"
)
assert agreement > 0.99, (
    "our merges cut more than 99 % of John's tokens as sentencepiece does"
)

# %% [markdown]
# A real system learns a few thousand merges. With a vocabulary of 2,000 pieces, John's Spanish has
# no unknown piece at all, and the price is length: a verse becomes more pieces than it had words.

# %%
spanish_bpe = train_bpe(spanish_train_sentences, 2000)
spanish_pieces = [spanish_bpe.encode(" ".join(verse)) for verse in john_spanish]
pieces_per_word = sum(map(len, spanish_pieces)) / len(john_words)
print(
    f"2,000 pieces: {pieces_per_word:.2f} pieces per Spanish token of John, "
    f"{sum(ids.count(UNK) for ids in spanish_pieces)} unknown pieces"
)
print(
    "a word never seen in training:",
    next(w for w in john_words if w not in spanish_word_counts),
    "->",
    spanish_bpe.encode(
        next(w for w in john_words if w not in spanish_word_counts), out_type=str
    ),
)
assert sum(ids.count(UNK) for ids in spanish_pieces) == 0 and pieces_per_word > 1.1, (
    "with 2,000 pieces no piece of John is unknown,"
    " and there are more pieces than words"
)

# %% [markdown]
# Subwords are what translation systems have used since 2016. Our networks below still work on
# words, with `<unk>`, as Bahdanau et al. (2015) did with a 30,000-word vocabulary. Pieces would cost
# little on the source side, which the encoder only reads; on the target side every verse becomes
# longer and the decoder must learn to spell, which this chapter's training budget does not pay
# for. Exercise 2 measures the length a vocabulary of pieces costs.
#
# A verse becomes its words' ids. The source ends with the end id (the encoder sees where the
# sentence stops), and the target is shifted for teacher forcing: the decoder reads `<s> w1 w2 ...`
# and must predict `w1 w2 ... </s>`.


# %%
def sources_and_targets(verses):
    """Source ids ending with </s>, target ids between <s> and </s>, per verse
    (lists of different lengths)."""
    sources = [
        [spanish_ids.get(token, UNK) for token in lowercase(v.spanish)] + [END]
        for v in verses
    ]
    targets = [
        [START]
        + [english_ids.get(token, UNK) for token in lowercase(v.english)]
        + [END]
        for v in verses
    ]
    return sources, targets


(
    (train_sources, train_targets),
    (valid_sources, valid_targets),
    (test_sources, test_targets),
) = (
    sources_and_targets(verses) for verses in (train_verses, valid_verses, test_verses)
)
print(
    "John 1:1 as the network reads it:",
    " ".join(spanish_words[i] for i in test_sources[test_verses.index(example)]),
)
assert all(
    len(source) == len(v.spanish) + 1
    for source, v in zip(test_sources, test_verses, strict=True)
), "each source has one id more than its verse has Spanish tokens"

# %% [markdown]
# ## 3. Two baselines before any network
#
# We score translations with `sacrebleu`. **chrF** is an F-score of matching character n-grams (up to
# 6) that weights recall twice as much as precision ($\beta = 2$), and gives partial credit for a
# right stem with a wrong ending; **BLEU** is the geometric mean of word n-gram precisions (up to 4)
# with a penalty for output shorter than the reference. Both run from 0 to 100 over the whole test
# set. Our references and outputs are lowercased and tokenised the same way, so BLEU runs with
# `tokenize="none"`; its scores cannot be compared with published BLEU, which is computed on cased,
# detokenised text (the signatures below record the settings; Post, 2018).
#
# Two baselines mark the scale. **Word for word**: for every Spanish word, the English word it is
# most often linked to in the training verses (by the Strong's links), and a translation that
# replaces each source word by it, keeps punctuation, drops words it has never seen linked and merges
# repeated neighbours ("de tal manera" is three words for one Greek word); it keeps pairs seen only
# once or twice too, so some of its entries are noise. **A random training verse** for each test
# verse: fluent English that reads nothing of the source, so what a metric gives it is what
# fluency alone can score (a weak system can score below it, and a better-chosen source-blind
# output, such as one typical verse written for every test verse, can score above it).

# %%
link_counts = dict(
    Counter(
        (spanish_token, english_token)
        for v in train_verses
        for i, j in v.links
        for english_token, spanish_token in [
            (v.english[i].lower(), v.spanish[j].lower())
        ]
    ).most_common()
)
dictionary = {}
# most_common: by count, ties in order of first appearance
for spanish_token, english_token in link_counts:
    dictionary.setdefault(spanish_token, english_token)


def word_for_word(spanish_tokens, known=None):
    """The dictionary's translation; with `known` (Spanish words, English words), only
    the known Spanish words are translated, and only into known English words."""
    words = [
        dictionary.get(token) if token[0].isalnum() else token
        for token in lowercase(spanish_tokens)
        if known is None or token in known[0] or not token[0].isalnum()
    ]
    words = [
        w
        for w in words
        if w is not None and (known is None or w in known[1] or not w[0].isalnum())
    ]
    return " ".join(w for k, w in enumerate(words) if k == 0 or w != words[k - 1])


references = [" ".join(lowercase(v.english)) for v in test_verses]
chrf, bleu = (
    sacrebleu.metrics.CHRF(),
    sacrebleu.metrics.BLEU(tokenize="none", force=True),
)


def scores(hypotheses, refs=references):
    return {
        "chrF": chrf.corpus_score(hypotheses, [refs]).score,
        "BLEU": bleu.corpus_score(hypotheses, [refs]).score,
    }


random_draw = np.random.default_rng(seed).integers(
    0, len(train_verses), len(test_verses)
)
translations = {
    "random verse": [" ".join(lowercase(train_verses[k].english)) for k in random_draw],
    "word for word": [word_for_word(v.spanish) for v in test_verses],
}
print(
    f"{len(dictionary):,} Spanish words in the dictionary, from"
    f" {sum(link_counts.values()):,} links; e.g. amó -> {dictionary['amó']!r}, dios ->"
    f" {dictionary['dios']!r}"
)
print(
    "John 1:1 word for word:", translations["word for word"][test_verses.index(example)]
)
for name, texts in translations.items():
    print(
        f"{name:>13}: "
        + ", ".join(f"{metric} {value:.1f}" for metric, value in scores(texts).items())
    )
print("signatures:", chrf.get_signature(), "|", bleu.get_signature())

# %%
baseline_scores = {name: scores(texts) for name, texts in translations.items()}
assert dictionary["dios"] == "god", "the dictionary translates dios as god"
assert (
    baseline_scores["word for word"]["chrF"]
    > baseline_scores["random verse"]["chrF"] + 15
), "far above the random verse"
assert baseline_scores["random verse"]["BLEU"] < 2, (
    "a fluent verse unrelated to the source shares few 4-grams"
)

# %% [markdown]
# The random verse shows where chrF starts: fluent English with the right common words (*the*, *and*,
# *of*, *he*) scores well above zero without reading the source; BLEU, which needs longer matches, is
# close to zero for it (asserted). A network must be compared with such a baseline, not with zero.

# %% [markdown]
# ## 4. Encoder–decoders: a fixed context, and attention
#
# All models have an encoder of chapter 4's design: an embedding and a bidirectional GRU whose states at
# each source position, forward and backward concatenated, are the **annotations** $h_j$. Padding is
# masked (`mask_zero=True`), so the backward GRU starts at the real end of each sentence. The
# decoders differ only in the context $c_i$ they read at output step $i$:
#
# - **Fixed context**: one vector for the whole sentence, the last forward and the last backward
#   state, $c = [\overrightarrow{h}_{S};\, \overleftarrow{h}_1]$, at every step (a bidirectional
#   variant of the context of Cho et al., 2014, whose encoder ran one way). The new state is
#   $s_i = \mathrm{GRU}(s_{i-1}, [y_{i-1}; c])$.
# - **Attention, current state** (Luong, Pham & Manning, 2015, with their "concat" score, the
#   additive form of chapter 5, and without their "input feeding" of the last attentional output
#   into the next step): the decoder first reads the previous word,
#   $s_i = \mathrm{GRU}(s_{i-1}, y_{i-1})$, then queries with $s_i$. It scores every annotation, turns
#   the scores into weights (padding excluded) and reads the context:
#
# $$a_{ij} = v^\top \tanh(W s_i + U h_j), \qquad \alpha_{ij} = \frac{\exp a_{ij}}{\sum_k \exp a_{ik}},
# \qquad c_i = \sum_j \alpha_{ij} h_j.$$
#
# - **Attention, previous state** (Bahdanau et al., 2015): the query is $s_{i-1}$, the state before
#   it has read $y_{i-1}$, and the context enters the GRU, $s_i = \mathrm{GRU}(s_{i-1}, [y_{i-1}; c_i])$.
#
# In all three the first state is $s_0 = \tanh(W_s \overleftarrow{h}_1)$, as in Bahdanau et al., and
# the next word's logits are a dense layer of $[s_i; c_i; y_{i-1}]$ (Bahdanau et al. have a maxout
# layer there, which their appendix feeds with $s_{i-1}$ and their equation 4 with $s_i$; Luong et
# al. have a tanh layer; a linear readout keeps the three comparable). The fixed and
# the current-state decoders run their GRU over the whole target as one Keras `GRU` layer for
# training; the previous-state decoder cannot, because $c_i$ needs $s_{i-1}$: it repeats one step
# with `keras.ops.scan`. For generation all three advance one word at a time (`step`), with the GRU
# layer's own cell.


# %%
class Encoder(layers.Layer):
    """Embedding and bidirectional GRU: annotations (batch, S, 2u), the last forward and
    backward states."""

    def __init__(self, vocabulary_size, units, **kwargs):
        super().__init__(**kwargs)
        self.embed = layers.Embedding(vocabulary_size, units, mask_zero=True)
        self.rnn = layers.Bidirectional(
            layers.GRU(units, return_sequences=True, return_state=True)
        )

    def call(self, source):
        return self.rnn(self.embed(source))


# %% [markdown]
# Attention is a layer of its own, holding the three weights of the score above: $W$ for the
# query, $U$ (with a bias) for the annotations, $v$ for the score. The keys $U h_j$ do not depend
# on the output step, so they are computed once per sentence; a padded position gets an energy of
# $-10^9$ before the softmax, which makes its weight zero.


# %%
class ConcatAttention(layers.Layer):
    """Luong's "concat" score a_ij = v^T tanh(W s_i + U h_j), the weights alpha_ij over
    the real source positions and the contexts c_i = sum_j alpha_ij h_j."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.query = layers.Dense(units, use_bias=False)  # W
        self.key = layers.Dense(units)  # U (and the bias)
        self.score = layers.Dense(1, use_bias=False)  # v

    def build(self, query_size, annotation_size):
        shapes = {
            self.query: (None, query_size),
            self.key: (None, None, annotation_size),
            self.score: (None, None, None, self.query.units),
        }
        for layer, shape in shapes.items():
            if not layer.built:  # `keys` may have built U already
                layer.build(shape)

    def keys(self, annotations):
        return self.key(annotations)

    def read(self, queries, annotations, keys, source_mask):
        """Contexts (batch, T, 2u) and weights (batch, T, S) for queries (batch, T, u)."""
        energies = self.score(
            keras.ops.tanh(self.query(queries)[:, :, None, :] + keys[:, None])
        )[..., 0]
        weights = keras.ops.softmax(
            keras.ops.where(source_mask[:, None, :], energies, -1e9), axis=-1
        )
        return keras.ops.einsum("bts,bsd->btd", weights, annotations), weights


# %% [markdown]
# A decoder first as it generates, one word at a time. `start` makes the first state $s_0$ and
# collects what every step reads from the encoder (the annotations, their keys, the fixed context,
# the mask). `advance` is the recurrence, the only place where the three variants differ: which
# state queries, and whether the context enters the GRU. `step` adds the readout, the logits of
# the next word.


# %%
class StepDecoder(layers.Layer):
    """A GRU decoder with a fixed context (query=None) or attention queried by the
    "current" or the "previous" state, advanced one word at a time."""

    def __init__(self, vocabulary_size, units, annotation_size, query=None, **kwargs):
        super().__init__(**kwargs)
        if query not in (None, "current", "previous"):
            raise ValueError(
                f"query must be None, 'current' or 'previous', got {query!r}"
            )
        self.units, self.annotation_size = units, annotation_size
        self.query_state = query
        # XLA cannot size the gradient buffers of keras.ops.scan (the previous-state
        # decoder's training loop).
        self.supports_jit = False
        self.embed = layers.Embedding(vocabulary_size, units)
        # the layer runs over the whole target in training; its cell makes the steps of
        # generation
        self.rnn = layers.GRU(units, return_sequences=True)
        self.initial = layers.Dense(units, activation="tanh")
        self.logits = layers.Dense(vocabulary_size)
        self.attention = ConcatAttention(units) if query else None

    def build(self, input_shape):  # `start` may have built `initial` already
        reads_context = self.query_state != "current"
        gru_input = self.units + reads_context * self.annotation_size
        shapes = {
            self.embed: (None,),
            self.rnn: (None, None, gru_input),
            self.initial: (None, self.annotation_size // 2),
            self.logits: (None, 2 * self.units + self.annotation_size),
        }
        for layer, shape in shapes.items():
            if not layer.built:
                layer.build(shape)
        if self.attention is not None and not self.attention.built:
            self.attention.build(self.units, self.annotation_size)

    def start(self, annotations, forward_last, backward_first, source_mask):
        """The first decoder state and what every step reads from the encoder."""
        keys = self.attention.keys(annotations) if self.attention else None
        fixed_context = keras.ops.concatenate([forward_last, backward_first], axis=-1)
        memory = (annotations, keys, fixed_context, source_mask)
        return self.initial(backward_first), memory

    def attend(self, queries, memory):
        annotations, keys, _, source_mask = memory
        return self.attention.read(queries, annotations, keys, source_mask)

    def advance(self, previous_embedded, state, memory):
        """One step from s_{i-1}: the new state s_i, the context c_i and the attention
        weights alpha_i."""
        _, _, fixed_context, source_mask = memory
        if self.query_state == "current":
            new_state, _ = self.rnn.cell(previous_embedded, [state])
            context, weights = self.attend(new_state[:, None], memory)
            return new_state, context[:, 0], weights[:, 0]
        if self.query_state == "previous":
            context, weights = self.attend(state[:, None], memory)
            context, weights = context[:, 0], weights[:, 0]
        else:
            context = fixed_context
            weights = keras.ops.zeros_like(keras.ops.cast(source_mask, "float32"))
        gru_input = keras.ops.concatenate([previous_embedded, context], axis=-1)
        new_state, _ = self.rnn.cell(gru_input, [state])
        return new_state, context, weights

    def step(self, previous_words, state, memory):
        """Generation: the logits of the next word, the new state and the attention
        weights."""
        previous_embedded = self.embed(previous_words)
        new_state, context, weights = self.advance(previous_embedded, state, memory)
        readout_input = [new_state, context, previous_embedded]
        logits = self.logits(keras.ops.concatenate(readout_input, axis=-1))
        return logits, new_state, weights


# %% [markdown]
# Training feeds the whole (teacher-forced) target at once. Two of the variants need no loop of
# ours: with a fixed context, or with the current state as the query, the GRU layer runs over all
# the target's words and attention then reads every step at once. The previous-state decoder
# cannot do that, since $c_i$ needs $s_{i-1}$: it repeats `advance` with `keras.ops.scan`.


# %%
class Decoder(StepDecoder):
    def call(self, decoder_inputs, state, memory):
        """Training: all steps over the (teacher-forced) inputs; logits (batch, T, V)
        and weights (batch, T, S)."""
        embedded = self.embed(decoder_inputs)
        annotations, _, fixed_context, _ = memory
        batch, steps = keras.ops.shape(embedded)[0], keras.ops.shape(embedded)[1]
        source_length = keras.ops.shape(annotations)[1]
        if self.query_state == "current":
            states = self.rnn(embedded, initial_state=[state])
            contexts, weights = self.attend(states, memory)
        elif self.query_state is None:  # the same context at every step
            contexts = keras.ops.repeat(fixed_context[:, None, :], steps, axis=1)
            gru_inputs = keras.ops.concatenate([embedded, contexts], axis=-1)
            states = self.rnn(gru_inputs, initial_state=[state])
            weights = keras.ops.zeros((batch, steps, source_length))
        else:  # c_i needs s_{i-1}: one step at a time
            initial = (
                state,
                keras.ops.zeros((batch, self.annotation_size)),
                keras.ops.zeros((batch, source_length)),
            )

            # keras.ops.scan wants outputs shaped like the carry
            def one_step(carry, previous_embedded):
                outputs = self.advance(previous_embedded, carry[0], memory)
                return outputs, outputs

            time_major = keras.ops.transpose(embedded, (1, 0, 2))
            _, outputs = keras.ops.scan(one_step, initial, time_major)
            states, contexts, weights = (
                keras.ops.transpose(output, (1, 0, 2)) for output in outputs
            )
        readout_input = [states, contexts, embedded]
        logits = self.logits(keras.ops.concatenate(readout_input, axis=-1))
        return logits, weights


# %% [markdown]
# The translator joins an encoder to a decoder of the chosen variant. `memory` is the encoder's
# part, run once per batch of sentences; generation (section 5) calls it once and then the
# decoder's `step` word by word.


# %%
class Translator(keras.Model):
    def __init__(self, query, units=32, **kwargs):
        super().__init__(**kwargs)
        self.encoder = Encoder(len(spanish_words), units)
        self.decoder = Decoder(len(english_words), 2 * units, 2 * units, query)

    def memory(self, source):
        annotations, forward_last, backward_first = self.encoder(source)
        return self.decoder.start(
            annotations, forward_last, backward_first, source != PAD
        )

    def call(self, inputs):
        source, decoder_inputs = inputs
        state, memory = self.memory(source)
        return self.decoder(decoder_inputs, state, memory)[0]

    def attention_weights(self, source, decoder_inputs):
        state, memory = self.memory(source)
        return keras.ops.convert_to_numpy(
            self.decoder(decoder_inputs, state, memory)[1]
        )


# %% [markdown]
# Three translators, one per variant, and their sizes:


# %%
def padded(rows):
    """Lists of ids as one array, padded with PAD to the longest."""
    array = np.full((len(rows), max(map(len, rows))), PAD, dtype="int32")
    for k, row in enumerate(rows):
        array[k, : len(row)] = row
    return array


queries = {
    "fixed context": None,
    "attention": "current",
    "attention, previous state": "previous",
}
translators = {
    name: Translator(query, name=name.replace(",", "").replace(" ", "_"))
    for name, query in queries.items()
}
probe_sources, probe_targets = padded(test_sources[:4]), padded(test_targets[:4])
for model in translators.values():
    model((probe_sources, probe_targets[:, :-1]))  # one eager call creates every weight
parameters = {name: model.count_params() for name, model in translators.items()}
print({name: f"{count:,}" for name, count in parameters.items()})

# %% [markdown]
# Where the parameters are, checked against their formulas: the output layer, and what each
# decoder adds or saves.

# %%
attention_weights_count = 64 * 64 + (64 * 64 + 64) + 64  # W, U and its bias, v
output_layer_share = {
    name: model.decoder.logits.count_params() / parameters[name]
    for name, model in translators.items()
}
print(
    "share of the output layer:",
    {name: f"{share:.0%}" for name, share in output_layer_share.items()},
)
assert all(
    model.decoder.logits.count_params() == (192 + 1) * len(english_words)
    for model in translators.values()
), "the output layer is 192 inputs times the English vocabulary, plus a bias per word"
assert all(0.4 < share < 0.6 for share in output_layer_share.values()), (
    "about half of every model"
)
assert (
    parameters["attention, previous state"] - parameters["fixed context"]
    == attention_weights_count
), (
    "the previous-state model exceeds the fixed context by exactly the count of W, U,"
    " its bias and v"
)
assert (
    parameters["attention, previous state"] - parameters["attention"] == 3 * 64 * 64
), (
    "the current-state decoder's GRU does not read the context: its input kernel is 64"
    " rows shorter"
)

# %% [markdown]
# The attention decoder here has fewer parameters than the fixed-context one: its GRU reads only the
# previous word, and attention's own weights are fewer than the 64 rows that saves. The largest single
# part of every model, about half of its parameters, is the output layer: 192 inputs times the English
# vocabulary, plus a bias per word (asserted). The
# training path (`call`) and the generation path (`step`, one word at a time) are two
# implementations of each decoder; fed the same previous words, they must give the same logits. At
# initialisation the logits are tiny and the attention almost uniform, so a wrong query would barely
# show: the check runs with every weight drawn at a scale where the query matters, then puts the
# initial weights back. It also checks which state asks: changing the word read at step 2 must move
# step 2's attention weights if the current state queries; if the previous state queries, step 2's
# weights stay put and the change first shows at step 3.

# %% tags=["nbval-ignore-output"]
check_draws = np.random.default_rng(seed)
for name, model in translators.items():
    initial_weights = model.get_weights()
    model.set_weights(
        [check_draws.normal(0, 0.3, w.shape).astype("float32") for w in initial_weights]
    )
    state, memory = model.memory(probe_sources)
    step_logits = []
    for position in range(probe_targets.shape[1] - 1):
        logits, state, _ = model.decoder.step(probe_targets[:, position], state, memory)
        step_logits.append(keras.ops.convert_to_numpy(logits))
    training_logits = keras.ops.convert_to_numpy(
        model((probe_sources, probe_targets[:, :-1]))
    )
    # which state asks: change the input of step 2, see which rows of weights move
    if model.decoder.query_state:
        changed_inputs = probe_targets[:, :-1].copy()
        changed_inputs[:, 2] = np.where(changed_inputs[:, 2] == 10, 11, 10)
        moved = np.abs(
            model.attention_weights(probe_sources, changed_inputs)
            - model.attention_weights(probe_sources, probe_targets[:, :-1])
        ).max(axis=(0, 2))
        reads_current = model.decoder.query_state == "current"
        assert (moved[2] > 1e-3) == reads_current and moved[3] > 1e-3, (
            "step 2's query has read input 2 or not"
        )
    model.set_weights(initial_weights)
    difference = np.abs(np.stack(step_logits, 1) - training_logits).max()
    print(
        f"{name:>26}: logits of size {np.abs(training_logits).mean():.2f}; step by step"
        f" against the training path, largest difference {difference:.1e}"
    )
    assert np.abs(training_logits).mean() > 0.3 and difference < 1e-4, (
        "fed the same words, step by step gives the training path's logits, and they"
        " are not tiny"
    )

# %% [markdown]
# **Training.** The models train the same way: teacher forcing, Adam at $10^{-2}$ with the global
# gradient norm clipped at 1, batches of up to 64 verses, and a cross-entropy averaged over the
# real target words (a sample weight of 0 on the padding, and
# `reduction="mean_with_sample_weight"`, which divides by the sum of the weights instead of by
# every position of the batch, padding included). The encoder's embeddings and GRUs are 32 wide per
# direction, the decoder's 64. Verses differ in length by a factor of ten, so the batches are
# **bucketed** by length (chapter 4, section 7): each batch is padded only to its own longest
# verse. Training would keep the weights of the epoch with the lowest loss on Romans, and stop when
# that loss has not improved for two epochs; at this budget the cap of 5 epochs ends training first
# (asserted), and the printed losses show whether the loss on Romans was still falling, in which case
# the weights kept are the last epoch's. With more epochs the selection matters, and a patience of
# one epoch would be too short: in longer runs the loss on Romans can rise for one epoch and fall
# again. Each model gets its own copy of the
# batches, shuffled the same way. The previous-state decoder cannot run its GRU as one layer over
# the target, and its loop of single steps is too slow for this chapter's budget on a CPU; it trains
# here only when a GPU is present, and the comparison below is between the fixed context and the
# current-state attention.

# %%
batch_size, bucket_edges = 64, [12, 18, 24, 30, 36]


def batches(sources, targets, shuffle):
    """tf.data batches of up to 64 verses of similar length, each padded to its longest
    verse: ((source, decoder input), decoder target, weight 0 on the padding)."""
    ragged_sources, ragged_targets = (
        tf.ragged.constant(sources, "int32"),
        tf.ragged.constant(targets, "int32"),
    )
    dataset = tf.data.Dataset.range(len(sources)).map(
        lambda k: (ragged_sources[k], ragged_targets[k])
    )
    if shuffle:
        dataset = dataset.shuffle(len(sources), seed=seed)
    dataset = dataset.bucket_by_sequence_length(
        lambda source, target: tf.maximum(tf.size(source), tf.size(target)),
        bucket_edges,
        [batch_size] * (len(bucket_edges) + 1),
    )
    bucket_sizes = Counter(
        int(np.searchsorted(bucket_edges, max(len(s), len(t)), side="right"))
        for s, t in zip(sources, targets, strict=True)
    )
    dataset = dataset.apply(
        tf.data.experimental.assert_cardinality(  # tells Keras the length of an epoch
            sum(-(-size // batch_size) for size in bucket_sizes.values())
        )
    )
    return dataset.map(
        lambda source, target: (
            (source, target[:, :-1]),
            target[:, 1:],
            tf.cast(target[:, 1:] != PAD, "float32"),
        )
    )


def padding_share(dataset):
    padding = total = 0
    for (source, _), target, _ in dataset:
        padding += int(
            tf.reduce_sum(tf.cast(target == PAD, "int32"))
            + tf.reduce_sum(tf.cast(source == PAD, "int32"))
        )
        total += int(tf.size(target) + tf.size(source))
    return padding / total


valid_batches = batches(valid_sources, valid_targets, False)
plain_padding = 1 - sum(map(len, train_sources + train_targets)) / (
    len(train_sources) * (max(map(len, train_sources)) + max(map(len, train_targets)))
)
bucketed_padding = padding_share(batches(train_sources, train_targets, True))
print(
    f"padding share: one array for all verses {plain_padding:.0%}, bucketed batches"
    f" {bucketed_padding:.0%}"
)
assert bucketed_padding < plain_padding / 2, (
    "bucketed batches have less than half the padding share of one array for all verses"
)

# %%
trained = ["fixed context", "attention"]
if gpu_available():  # its loop of single steps is too slow for the CPU budget
    trained.append("attention, previous state")
assert set(trained) <= set(translators), "only decoders built above are trained"

# %% tags=["nbval-ignore-output"]
histories = {}
for name in trained:
    keras.utils.set_random_seed(seed)
    # the same order of batches for each model
    train_batches = batches(train_sources, train_targets, True)
    model = translators[name]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
    )
    stopping = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    histories[name] = model.fit(
        train_batches,
        validation_data=valid_batches,
        epochs=5,
        shuffle=False,
        verbose=0,
        callbacks=[stopping, EpochLogger(1, name)],
    ).history

# %%
for name, history in histories.items():
    assert history["loss"][-1] < 0.7 * history["loss"][0], f"{name} learned"
    assert min(history["val_loss"]) < history["val_loss"][0], (
        f"{name} improved on Romans after its first epoch"
    )
    assert len(history["val_loss"]) == 5 and min(history["val_loss"][3:]) < min(
        history["val_loss"][:3]
    ), (
        f"{name}: the cap of 5 epochs ended training, not early stopping (epoch 4 or 5"
        " improved on Romans)"
    )

# %% [markdown]
# ## 5. Decoding: greedy and beam search
#
# To translate, the decoder runs on its own outputs: it starts from `<s>`, and at every step feeds the
# word it chose back in, carrying its state (no re-running of the whole model per word). **Greedy**
# decoding takes the most probable word each time. **Beam search** keeps the $K$ most probable
# partial translations (the beam): every step extends each by every word, and keeps the $K$ best of
# the $K \times V$ extensions by their total log-probability $\sum_i \log p(y_i \mid y_{<i}, x)$; a
# hypothesis that has emitted `</s>` is finished and keeps its score and its place in the beam, so the
# beam narrows as hypotheses finish. Greedy is beam search with $K = 1$, so one function does both,
# for all test verses at once ($n \times K$ rows through `step`). A translation may be about twice its
# source's length plus ten words; at that length it is ended.
#
# Two rules first: which words a hypothesis may still write, and how the $K$ best of a row of
# candidates are found without sorting all $K \times V$ of them.


# %%
def constrain(log_probs, finished, at_limit):
    """Log-probabilities (n, K, V) of the next word under the rules: a hypothesis at its
    length limit may only end; a finished one only grows padding, at no cost."""
    only_end = np.where(np.arange(log_probs.shape[-1]) == END, 0.0, -np.inf)
    log_probs[at_limit] = log_probs[at_limit][:, [END]] + only_end
    log_probs[finished] = -np.inf
    log_probs[finished, PAD] = 0.0
    return log_probs


def best_first(candidates, beam_size):
    """Indices of the K best candidates of each row, best first (ties by index)."""
    top = np.argpartition(-candidates, beam_size - 1, axis=1)[:, :beam_size]
    order = np.lexsort((top, -np.take_along_axis(candidates, top, axis=1)))
    return np.take_along_axis(top, order, axis=1)


# %% [markdown]
# The search itself: every step extends each hypothesis by every word, keeps the best, and moves
# each kept hypothesis's decoder state along with it (`parent` is the beam it came from).


# %%
def beam_search(model, sources, beam_size):
    """Beam search for every source (lists of ids). Returns (words (n, K, steps),
    log-probabilities (n, K)), the beams sorted best first; a finished hypothesis is
    padded after its </s>."""
    source = padded(sources)
    n = len(source)
    limits = 2 * np.array([len(s) for s in sources]) + 10
    state, memory = model.memory(np.repeat(source, beam_size, axis=0))
    state = keras.ops.convert_to_numpy(state)
    # one graph for all steps: no Python per operation
    step_function = tf.function(model.decoder.step)
    previous = np.full(n * beam_size, START, dtype="int32")
    totals = np.zeros((n, beam_size))
    totals[:, 1:] = -np.inf  # at the start all beams are the same: keep one
    words = np.zeros((n, beam_size, 0), dtype="int32")
    finished = np.zeros((n, beam_size), dtype=bool)
    rows = np.arange(n)[:, None]
    for step in range(limits.max()):
        logits, new_state, _ = step_function(previous, state, memory)
        log_probs = keras.ops.convert_to_numpy(
            keras.ops.log_softmax(logits, axis=-1)
        ).astype("float64")
        at_limit = (step == limits - 1)[:, None] & ~finished
        log_probs = constrain(log_probs.reshape(n, beam_size, -1), finished, at_limit)
        candidates = (totals[..., None] + log_probs).reshape(n, -1)
        best = best_first(candidates, beam_size)
        parent, word = np.divmod(best, log_probs.shape[-1])
        totals = np.take_along_axis(candidates, best, axis=1)
        words = np.concatenate([words[rows, parent], word[..., None]], axis=-1)
        finished = finished[rows, parent] | (word == END)
        state = keras.ops.convert_to_numpy(new_state)[
            (rows * beam_size + parent).ravel()
        ]
        previous = word.ravel().astype("int32")
        if finished.all():
            break
    return words, totals


# %% [markdown]
# Every trained model decodes the test verses greedily; the attention model also with a beam of
# four. John 1:1 as each of them translates it:


# %% tags=["nbval-ignore-output"]
def to_text(word_ids):
    """The English words of a decoded hypothesis, up to its </s>."""
    words = []
    for word in word_ids:
        if word in (END, PAD):
            break
        words.append(english_words[word])
    return " ".join(words)


decoded = {}
for name in trained:
    for beam_size in (1, 4) if name == "attention" else (1,):
        words, totals = beam_search(translators[name], test_sources, beam_size)
        decoded[name, beam_size] = {
            "text": [to_text(w[0]) for w in words],
            "log_prob": totals[:, 0],
            "beams": words,
            "beam_log_probs": totals,
        }
print("John 1:1, reference:", references[test_verses.index(example)])
for (name, beam_size), result in decoded.items():
    print(f"{name:>26}, beam {beam_size}: {result['text'][test_verses.index(example)]}")

# %% [markdown]
# What beam search finds, by the model's own measure: the log-probability of the chosen translation.
# A wider beam is a better search, so it should find translations the model itself rates higher than
# greedy's, on average and for most verses (not all: a beam can prune early the prefix that greedy
# would have completed best). Whether the translations are *better* is another question, which the
# metric answers, with a **paired bootstrap test** (Koehn, 2004): resample the test verses with
# replacement a thousand times, score both systems on each resample, and count how often the
# difference is as large as the one observed under the hypothesis that the systems are equal
# (sacrebleu computes this p-value as the Moses toolkit's script does).


# %% tags=["nbval-ignore-output"]
def at_least_as_probable(beam, greedy):
    """Per verse: beam's translation scores at least greedy's, ties within float32
    rounding (1e-5 relative: the same translation scored in batches of other sizes,
    whose kernels round differently)."""
    return beam["log_prob"] >= greedy["log_prob"] - 1e-5 * np.abs(greedy["log_prob"])


def paired_bootstrap(baseline, system, metric="chrF", resamples=1000):
    """sacrebleu's paired bootstrap test: the p-value of the system's difference from
    the baseline."""
    test = PairedTest(
        [("baseline", baseline), ("system", system)],
        {metric: chrf if metric == "chrF" else bleu},
        [references],
        test_type="bs",
        n_samples=resamples,
        n_jobs=1,
    )
    # {"System": names, "chrF2" (the metric's full name): results per system}
    _, results = test()
    return next(value for key, value in results.items() if key != "System")[1].p_value


def p_text(p_value, resamples=1000):
    """'= 0.123', or '<= 0.001' at the smallest p-value the resamples can give, 1 /
    (resamples + 1)."""
    return f"<= {p_value:.3f}" if p_value <= 1 / (resamples + 1) else f"= {p_value:.3f}"


greedy, beam = decoded["attention", 1], decoded["attention", 4]
beam_p_value = paired_bootstrap(greedy["text"], beam["text"])
print(
    f"mean log-probability greedy {greedy['log_prob'].mean():.2f}, beam 4"
    f" {beam['log_prob'].mean():.2f}; beam at least as probable on"
    f" {np.mean(at_least_as_probable(beam, greedy)):.0%} of the verses"
)
for beam_size, result in ((1, greedy), (4, beam)):
    words_per_verse = np.mean([len(text.split()) for text in result["text"]])
    print(
        f"beam {beam_size}: "
        + ", ".join(f"{k} {v:.1f}" for k, v in scores(result["text"]).items())
        + f", {words_per_verse:.1f} words per verse (references"
        f" {np.mean([len(r.split()) for r in references]):.1f})"
    )
print(f"paired bootstrap, beam 4 against greedy on chrF: p {p_text(beam_p_value)}")

# %%
assert beam["log_prob"].mean() > greedy["log_prob"].mean(), (
    "beam search finds more probable translations"
)
assert np.mean(at_least_as_probable(beam, greedy)) > 0.75, "... for most verses"
assert (
    np.mean([len(t.split()) for t in beam["text"]])
    < np.mean([len(t.split()) for t in greedy["text"]]) - 0.5
), "and shorter ones"

# %% [markdown]
# The beam finds what the model prefers, and what it prefers is shorter: on average the beam's
# translations have more than half a word less than greedy's (both asserted). Whether that is a better
# translation depends on the metric and on the sample. Read the p-value: a value above 0.05 says the
# difference in chrF is within what another sample of test verses could reverse (the test is
# two-sided: a small value does not say which system is better; the scores do). It says nothing about
# another training run: with another seed the same comparison can come out significant in the other
# direction, so systems are compared over several training runs (Clark, Dyer, Lavie & Smith, 2011).
# Koehn and Knowles (2017) list the beam-search pathologies of neural translation among its six
# challenges: with wider beams, the model's own preference for short outputs takes over. Exercise 1
# corrects for length.

# %% [markdown]
# ## 6. The scores, and the bottleneck by sentence length
#
# The fixed-context decoder must draw the whole verse from one vector of 64 numbers; attention reads
# the annotation of each source word when it needs it. Bahdanau et al. (2015, figure 2) showed the
# consequence on English–French news: without attention, BLEU falls steeply as sentences get longer
# (Cho et al., 2014b, had found the same fall); their attention model trained on sentences of up to
# 50 words holds up, and the one trained on up to 30 words degrades beyond that length, less than the
# model without attention. We score every system on the whole of John and in three bins of source
# length, all within the training lengths, with the dictionary restricted to the words the networks
# know (Spanish words it may translate, English words it may write) as one more line: it shows how
# much of the dictionary's lead is its larger vocabulary.

# %% tags=["nbval-ignore-output"]
known_words = (set(spanish_words[4:]), set(english_words[4:]))
systems = translations | {
    "word for word, networks' words": [
        word_for_word(v.spanish, known_words) for v in test_verses
    ]
}
systems |= {name: decoded[name, 1]["text"] for name in trained} | {
    "attention, beam 4": decoded["attention", 4]["text"]
}
length_bins = {
    "1-15 tokens": (1, 15),
    "16-25 tokens": (16, 25),
    "26-40 tokens": (26, 40),
}
source_lengths = np.array([len(v.spanish) for v in test_verses])
bin_members = {
    name: np.flatnonzero((source_lengths >= low) & (source_lengths <= high))
    for name, (low, high) in length_bins.items()
}
score_table = {(system, "all"): scores(texts) for system, texts in systems.items()}
for bin_name, members in bin_members.items():
    for system, texts in systems.items():
        score_table[system, bin_name] = scores(
            [texts[k] for k in members], [references[k] for k in members]
        )
columns = ["all", *length_bins]
print(
    f"{'chrF / BLEU':>31} "
    + " ".join(f"{c:>13}" for c in columns)
    + "  words per verse"
)
print(
    f"{'verses':>31} "
    + " ".join(
        f"{len(test_verses) if c == 'all' else len(bin_members[c]):>13}"
        for c in columns
    )
    + f"  {np.mean([len(r.split()) for r in references]):.1f} (references)"
)
for system, texts in systems.items():
    print(
        f"{system:>31} "
        + " ".join(
            f"{score_table[system, c]['chrF']:>6.1f}"
            f" /{score_table[system, c]['BLEU']:>5.1f}"
            for c in columns
        )
        + f"  {np.mean([len(t.split()) for t in texts]):.1f}"
    )
network_p_value = paired_bootstrap(systems["fixed context"], systems["attention"])
dictionary_p_value = paired_bootstrap(
    systems["attention"], systems["word for word, networks' words"]
)
print(
    "paired bootstrap on chrF: attention against the fixed context p"
    f" {p_text(network_p_value)}; the restricted dictionary against attention p"
    f" {p_text(dictionary_p_value)}"
)

# %%
fig, ax = plt.subplots(figsize=(7.5, 4))
shown_systems = ["word for word", *trained]
offsets = np.linspace(-0.3, 0.3, len(shown_systems))
for offset, system in zip(offsets, shown_systems, strict=True):
    ax.bar(
        np.arange(len(length_bins)) + offset,
        [score_table[system, b]["chrF"] for b in length_bins],
        width=0.6 / len(shown_systems),
        label=system,
    )
for k, bin_name in enumerate(length_bins):
    ax.hlines(
        score_table["random verse", bin_name]["chrF"],
        k - 0.42,
        k + 0.42,
        colors="black",
        linestyles="dashed",
        label="random training verse" if k == 0 else None,
    )
ax.set_xticks(np.arange(len(length_bins)), list(length_bins))
ax.set(
    title="chrF on John by source length (networks: greedy)",
    xlabel="source verse length (Spanish tokens)",
    ylabel="chrF",
    ylim=(
        0,
        1.3
        * max(score_table[s, b]["chrF"] for s in shown_systems for b in length_bins),
    ),
)
ax.legend(loc="upper center", ncol=2, fontsize=8)
plt.show()

# %%
first_bin, last_bin = list(length_bins)[0], list(length_bins)[-1]
assert (
    score_table["attention", "all"]["BLEU"]
    > 1.5 * score_table["fixed context", "all"]["BLEU"]
), "attention's BLEU on John is more than one and a half times the fixed context's"
for name in trained[1:]:  # attention; with a GPU, the previous-state decoder too
    assert (
        score_table[name, "all"]["chrF"]
        > score_table["fixed context", "all"]["chrF"] + 4
    ), "attention's chrF on John is more than 4 points above the fixed context's"
assert network_p_value < 0.01, (
    "attention's lead is far beyond the sampling noise of 810 verses"
)
assert all(
    score_table["attention", b][metric] > score_table["fixed context", b][metric]
    for b in length_bins
    for metric in ("chrF", "BLEU")
), "in every bin, on both metrics"
assert (
    score_table["fixed context", "all"]["BLEU"]
    > score_table["random verse", "all"]["BLEU"] + 2
), "BLEU above the random verse's"
assert (
    score_table["fixed context", "all"]["chrF"]
    < score_table["random verse", "all"]["chrF"] + 2
), "no better than the random verse in chrF"
assert (
    score_table["word for word, networks' words", "all"]["chrF"]
    > score_table["attention", "all"]["chrF"]
), "even restricted to the networks' words, the dictionary beats attention in chrF"

# %% [markdown]
# Attention translates far better than the fixed context: more than one and a half times its BLEU
# and several points more chrF over John, more in every length bin on both metrics, and the paired
# bootstrap puts the difference far beyond chance (all asserted). The fixed context's chrF is no
# better than the random verse's (asserted: less than two points above it; it can even fall below,
# partly because every `<unk>` it writes is a near-certain miss); its BLEU, which needs matching
# word sequences, is above the random verse's (asserted), but a random verse is a weak
# source-blind baseline, so this does not show how much of the source the fixed context reads.
# Swapping each verse's source for another's and measuring the loss would (an exercise for the
# reader; the chapter does not run it).
#
# Does attention's lead grow with length, as in Bahdanau et al.'s figure? In the chrF and BLEU of
# greedy translations the change from bin to bin is small next to how much it varies from seed to seed, so
# the chapter does not assert it (in one run, as in the table above, the lead can even shrink with
# length). chrF of greedy output is a noisy view: one verse that repeats a
# phrase to the length limit loses most of its score (such repetition is the over-translation that
# coverage models address, by keeping count of the attention each source word has received; Tu, Lu,
# Liu, Liu & Li, 2016). The **teacher-forced loss** is smoother: the
# cross-entropy per word of the reference translation, with the true previous words fed, measures
# how well each model predicts the translation without any decoding.


# %% tags=["nbval-ignore-output"]
def per_word_losses(model, sources, targets, chunk=512):
    """Teacher-forced cross-entropy of each verse's reference words and its </s>:
    (sum, count) per verse."""
    sums, counts = [], []
    for first in range(0, len(sources), chunk):
        rows = slice(first, first + chunk)
        decoder_in, decoder_out = (
            padded([t[:-1] for t in targets[rows]]),
            padded([t[1:] for t in targets[rows]]),
        )
        logits = model((padded(sources[rows]), decoder_in))
        losses = keras.ops.convert_to_numpy(
            keras.losses.sparse_categorical_crossentropy(
                decoder_out, logits, from_logits=True
            )
        )
        real = decoder_out != PAD
        sums.append((losses * real).sum(axis=1))
        counts.append(real.sum(axis=1))
    return np.concatenate(sums), np.concatenate(counts)


john_losses = {
    name: per_word_losses(translators[name], test_sources, test_targets)
    for name in trained
}
loss_by_length = {
    (name, bin_name): (
        john_losses[name][0][members].sum() / john_losses[name][1][members].sum()
    )
    for name in trained
    for bin_name, members in bin_members.items()
}
loss_gap = {
    bin_name: (
        loss_by_length["fixed context", bin_name]
        - loss_by_length["attention", bin_name]
    )
    for bin_name in length_bins
}
print(f"{'cross-entropy per word':>26} " + " ".join(f"{b:>13}" for b in length_bins))
for name in trained:
    print(
        f"{name:>26} "
        + " ".join(f"{loss_by_length[name, b]:>13.3f}" for b in length_bins)
    )
print(
    f"{'fixed minus attention':>26} "
    + " ".join(f"{loss_gap[b]:>13.3f}" for b in length_bins)
)

# %%
assert all(loss_gap[b] > 0 for b in length_bins), (
    "attention predicts the reference better at every length"
)
assert loss_gap[last_bin] > loss_gap[first_bin], (
    "... and is larger on the longest verses than on the shortest"
)
assert loss_gap[first_bin] > max(0.25, 0.4 * loss_gap[last_bin]), (
    "the fixed context is far behind on short verses too"
)

# %% [markdown]
# Attention predicts the reference better at every length, and its lead is larger on the longest
# verses than on the shortest (both asserted): consistent with a bottleneck, though the bins differ
# in their content too, and attention's own loss changes with length (printed). The effect is small
# next to Bahdanau et al.'s figure because the fixed context is far behind already on the shortest
# verses (attention's lead there is more than a quarter of a nat per word, and more than 40 % of its
# lead on the longest: asserted): after five epochs the fixed context has probably learned to use
# little of its summary at any length, so there is little left to lose on the long ones.
#
# The dictionary built from the Strong's links beats both networks in chrF even when it may use only
# the words the networks know (asserted in chrF, with the bootstrap's p-value printed; the BLEU
# column, printed beside it, can rank them otherwise): in chrF its lead is not the size of its
# vocabulary. It was built from the human word links of the training verses, while the networks learn
# from six thousand verse pairs alone; Koehn and Knowles (2017) found that neural translation falls
# behind older statistical methods when the training data is this small, and overtakes them only with
# much more.

# %% [markdown]
# ## 7. Does attention align words?
#
# When the attention decoder writes English word $i$, its weights $\alpha_{i\cdot}$ say which Spanish
# words it read. We feed the reference English with teacher forcing and take for each English word
# its most-weighted Spanish word: the predicted links $A$. The reference links come in two kinds (Och
# & Ney, 2003): a link is **sure** ($S$) when its two tokens have no other link, and **possible**
# ($P$, which contains $S$) otherwise: the Strong's links join every copy of a repeated word ("the
# Word was with God, and the Word was God" links each *Word* to every *Verbo*), and several words
# that translate one Greek word. Then precision $= |A \cap P| / |A|$, recall $= |A \cap S| / |S|$ and
# the **alignment error rate** $\mathrm{AER} = 1 - (|A \cap S| + |A \cap P|) / (|A| + |S|)$. We
# predict one link for each English word that has a reference link (words without a Strong's number,
# mostly ones the translators added, are not scored): the reference decides which words are aligned,
# so these numbers compare our aligners with each other, not with published AERs. A perfect aligner
# of this kind scores 0. Two baselines: a Spanish word drawn at random (counted by its expected hits),
# and the diagonal, the guess that word $i$ of an $m$-word translation goes with word
# $\mathrm{round}(i\,(n-1)/(m-1))$ of the $n$-word source, which is right more often than one might
# think between two languages with much the same word order.
#
# First the measure: the attention weights with the reference fed, the sure and possible links of a
# verse, and the three scores of an aligner.


# %%
def teacher_forced_attention(model, sources, targets, chunk=512):
    """Attention weights with the reference fed, per verse: (target words + 1, source
    words + 1)."""
    matrices = []
    for first in range(0, len(sources), chunk):
        rows = slice(first, first + chunk)
        weights = model.attention_weights(
            padded(sources[rows]), padded([t[:-1] for t in targets[rows]])
        )
        matrices += [
            w[: len(t) - 1, : len(s)]
            for w, s, t in zip(weights, sources[rows], targets[rows], strict=True)
        ]
    return matrices


def sure_and_possible(verse):
    """The reference links of a verse as (sure, possible) sets of (English, Spanish)."""
    english_degree = Counter(i for i, _ in verse.links)
    spanish_degree = Counter(j for _, j in verse.links)
    possible = set(verse.links)
    sure = {(i, j) for i, j in possible if english_degree[i] == spanish_degree[j] == 1}
    return sure, possible


def alignment_quality(choose):
    """Precision, recall and AER against the Strong's links over the test set.
    `choose(k, i, verse)` gives, for English word i of verse k, a probability for each
    Spanish word (one-hot for a single guess)."""
    sure_hits = possible_hits = predicted = sure_total = 0.0
    for k, verse in enumerate(test_verses):
        sure, possible = sure_and_possible(verse)
        sure_total += len(sure)
        for i in sorted({i for i, _ in possible}):
            guess = choose(k, i, verse)
            sure_hits += sum(guess[j] for i_, j in sure if i_ == i)
            possible_hits += sum(guess[j] for i_, j in possible if i_ == i)
            predicted += 1
    return {
        "precision": possible_hits / predicted,
        "recall": sure_hits / sure_total,
        "AER": 1 - (sure_hits + possible_hits) / (predicted + sure_total),
    }


# %% [markdown]
# Then the aligners, each a function that gives, for English word $i$ of verse $k$, a probability
# for every Spanish word: the random word (uniform), the diagonal, a perfect aligner that reads the
# reference links (a check of the measure: it must score 0), and each attention model's
# most-weighted Spanish word.


# %% tags=["nbval-ignore-output"]
def one_hot(position, length):
    return np.eye(length)[position]


def perfect_link(k, i, verse):
    """A reference link of English word i: a sure one if it has one."""
    sure, possible = sure_and_possible(verse)
    partners = [j for i_, j in sure if i_ == i] or [j for i_, j in possible if i_ == i]
    return one_hot(min(partners), len(verse.spanish))


attention_models = [name for name in trained if name != "fixed context"]
forced_weights = {
    name: teacher_forced_attention(translators[name], test_sources, test_targets)
    for name in attention_models
}
guesses = {
    "random word": lambda k, i, v: np.full(len(v.spanish), 1 / len(v.spanish)),
    "diagonal": lambda k, i, v: one_hot(
        round(i * (len(v.spanish) - 1) / max(len(v.english) - 1, 1)), len(v.spanish)
    ),
    "a perfect aligner": perfect_link,
}
guesses |= {
    name: lambda k, i, v, name=name: one_hot(
        int(np.argmax(forced_weights[name][k][i, : len(v.spanish)])), len(v.spanish)
    )
    for name in attention_models
}
alignment = {name: alignment_quality(choose) for name, choose in guesses.items()}
sure_count = sum(len(sure_and_possible(v)[0]) for v in test_verses)
print(f"{sure_count:,} sure links of {sum(len(v.links) for v in test_verses):,}")
for name, quality in alignment.items():
    print(f"{name:>26}: " + ", ".join(f"{k} {v:.3f}" for k, v in quality.items()))

# %%
assert alignment["a perfect aligner"]["AER"] == 0, (
    "a perfect aligner scores an AER of 0"
)
assert alignment["diagonal"]["AER"] < alignment["random word"]["AER"] - 0.15, (
    "word order is much alike"
)
assert alignment["attention"]["AER"] < alignment["diagonal"]["AER"], (
    "attention aligns better than position"
)

# %% [markdown]
# Nobody told the model which words correspond: it was trained only to predict the next English
# word, and its attention aligns better than the diagonal, a baseline that ignores the words
# (asserted, on the alignment error rate). How good is that? Word alignment had its own models
# long before attention. **IBM Model 1** (Brown, Della Pietra, Della Pietra & Mercer, 1993) says that
# each English word of a verse was produced by one Spanish word of the same verse, chosen
# uniformly, with a translation probability $t(e \mid f)$ for each pair of words, and learns $t$
# from the verse pairs alone by **expectation
# maximisation**: starting from uniform $t$, the E-step
# gives each English token a posterior over the Spanish tokens of its verse,
# $t(e \mid f_j) / \sum_k t(e \mid f_k)$, and the M-step sets $t(e \mid f)$ to the expected number
# of times $f$ produced $e$, divided by the expected number of times $f$ produced anything. Its
# alignment of a test verse links each English word to the Spanish word with the highest $t$. Like
# attention, it never sees a link; it is trained on the training verses, in a few seconds:


# %% tags=["nbval-ignore-output"]
def ibm_model_1(verses, iterations=6):
    """IBM Model 1 by EM on verse pairs: a function t(english word, spanish word)."""
    english_index, spanish_index = {}, {}
    pair_english, pair_spanish, group_sizes = [], [], []
    # every English token of a verse paired with every Spanish token of the verse
    for v in verses:
        english = [
            english_index.setdefault(w, len(english_index))
            for w in lowercase(v.english)
        ]
        spanish = [
            spanish_index.setdefault(w, len(spanish_index))
            for w in lowercase(v.spanish)
        ]
        pair_english.append(np.repeat(english, len(spanish)))
        pair_spanish.append(np.tile(spanish, len(english)))
        group_sizes += [len(spanish)] * len(english)
    # which English token each pair belongs to
    token = np.repeat(np.arange(len(group_sizes)), group_sizes)
    pairs, pair_of = np.unique(
        np.concatenate(pair_english) * len(spanish_index)
        + np.concatenate(pair_spanish),
        return_inverse=True,
    )
    spanish_of = pairs % len(spanish_index)
    t = np.ones(len(pairs))
    for _ in range(iterations):
        posterior = t[pair_of] / np.bincount(token, t[pair_of])[token]  # E-step
        counts = np.bincount(pair_of, posterior, minlength=len(pairs))
        t = counts / np.bincount(spanish_of, counts)[spanish_of]  # M-step
    table = dict(zip(pairs.tolist(), t.tolist(), strict=True))
    return lambda e, f: table.get(
        english_index.get(e, -1) * len(spanish_index) + spanish_index.get(f, -1), 0.0
    )


# %% [markdown]
# Trained on the training verses and scored like the other aligners:

# %% tags=["nbval-ignore-output"]
translation_probability = ibm_model_1(train_verses)
alignment["IBM Model 1"] = alignment_quality(
    lambda k, i, v: one_hot(
        int(
            np.argmax(
                [
                    translation_probability(v.english[i].lower(), f.lower())
                    for f in v.spanish
                ]
            )
        ),
        len(v.spanish),
    )
)
print(
    f"{'IBM Model 1':>26}: "
    + ", ".join(f"{k} {v:.3f}" for k, v in alignment["IBM Model 1"].items())
)
print("t(god | dios) =", round(translation_probability("god", "dios"), 2))

# %%
assert alignment["IBM Model 1"]["AER"] < alignment["attention"]["AER"] - 0.15, (
    "the word aligner is far better"
)

# %% [markdown]
# A thirty-year-old word aligner, trained on the same verse pairs, aligns far better than attention
# (asserted). The comparison is not quite even: Model 1 links an English word it sees, while
# attention chooses where to look before it knows the word it will write, and Model 1 knows every
# word form where the networks have `<unk>`. (Brown et al.'s model also lets an English word come
# from an empty word; ours leaves it out.)
# Attention learns weights that look like an alignment for free, as a side effect of translating,
# but it is not an aligner: at scale, translation models' attention diverges from word alignments
# in ways that do not hurt the translation (Koehn & Knowles, 2017; Ghader & Monz, 2017), so a sharp
# heat map is not proof of a good model, nor a blurred one of a bad one. Bahdanau et al. showed
# heat maps, and never measured alignment error. With a GPU, the table above has a line for the
# previous-state decoder too, printed, not asserted: the asserts are about the current-state one.
# The heat map below shows the weights on one verse of John, the reference links as markers.

# %%
shown = next(
    k
    for k, v in enumerate(test_verses)
    if 9 <= len(v.english) <= 13 and 9 <= len(v.spanish) <= 13
)
verse = test_verses[shown]
fig, ax = plt.subplots(figsize=(7.5, 5.5))
image = ax.imshow(
    forced_weights["attention"][shown][: len(verse.english), : len(verse.spanish)],
    cmap="Blues",
    vmin=0,
    vmax=1,
)
fig.colorbar(image, ax=ax, label="attention weight", shrink=0.8)
sure, possible = sure_and_possible(verse)
for links, marker, label in (
    (possible - sure, "s", "possible link"),
    (sure, "o", "sure link"),
):
    english_index, spanish_index = zip(*links, strict=True) if links else ((), ())
    ax.scatter(
        spanish_index,
        english_index,
        s=130,
        marker=marker,
        facecolors="none",
        edgecolors="tab:red",
        label=label,
    )
ax.set_xticks(
    range(len(verse.spanish)), lowercase(verse.spanish), rotation=60, ha="right"
)
ax.set_yticks(range(len(verse.english)), lowercase(verse.english))
ax.set(
    title=f"Attention weights, {verse.book} {verse.chapter}:{verse.verse}",
    xlabel="Spanish source word",
    ylabel="English target word",
)
ax.legend(loc="upper left", bbox_to_anchor=(1.25, 1.0), fontsize=8)
plt.show()

# %% [markdown]
# ### Unknown words, before subwords
#
# Before subwords, translation networks had vocabularies of 30,000 to 80,000 words and an `<unk>` for
# the rest. Luong, Sutskever, Le, Vinyals & Zaremba (2015) trained the network to emit, with each
# unknown word, the position of its source word (found by an external word aligner), and replaced it
# by a dictionary translation or a copy of that word; Jean, Cho, Memisevic & Bengio (2015) took the
# position from the attention weights instead. We try the second on our greedy translations: feed
# the decoder its own output, and replace each `<unk>` by the dictionary's translation of the Spanish
# word it attended to most (or by that word, when the dictionary does not know it). Two controls:
# the Spanish word at the diagonal position, which needs no attention, and the word *the* for every
# `<unk>`, which needs not even the source.


# %%
def with_markers(row):
    """A decoded row as a target: <s>, its words up to the first </s>, then </s>."""
    words = [int(word) for word in row]
    if END in words:
        words = words[: words.index(END)]
    return [START, *words, END]


greedy_targets = [with_markers(row) for row in decoded["attention", 1]["beams"][:, 0]]
greedy_weights = teacher_forced_attention(
    translators["attention"], test_sources, greedy_targets
)


def attended_position(k, step):
    return int(np.argmax(greedy_weights[k][step, : len(test_verses[k].spanish)]))


def diagonal_position(k, step):
    source_length = len(test_verses[k].spanish)
    output_length = len(greedy_targets[k]) - 2
    return round(step * (source_length - 1) / max(output_length - 1, 1))


def replace_unknown(k, position):
    """Greedy translation k with each <unk> replaced by the dictionary's translation of
    the Spanish word at `position(k, step)`, or by that word itself."""
    spanish = lowercase(test_verses[k].spanish)
    words = []
    for step, word in enumerate(greedy_targets[k][1:-1]):
        if word == UNK:
            source_word = spanish[position(k, step)]
            words.append(dictionary.get(source_word, source_word))
        else:
            words.append(english_words[word])
    return " ".join(words)


# %% [markdown]
# The scores with each replacement, and two diagnostics: how often the model writes `<unk>`, and
# how often the Spanish word picked at those steps is itself outside the Spanish vocabulary (as
# the word an `<unk>` translates often is).

# %% tags=["nbval-ignore-output"]
replacements = {
    "no replacement": decoded["attention", 1]["text"],
    "guided by attention": [
        replace_unknown(k, attended_position) for k in range(len(test_verses))
    ],
    "diagonal position": [
        replace_unknown(k, diagonal_position) for k in range(len(test_verses))
    ],
    '"the" for every <unk>': [
        text.replace("<unk>", "the") for text in decoded["attention", 1]["text"]
    ],
}
unknown_steps = [
    (k, step)
    for k, target in enumerate(greedy_targets)
    for step, word in enumerate(target[1:-1])
    if word == UNK
]
unknown_written = len(unknown_steps) / sum(len(target) - 2 for target in greedy_targets)
english_unknown = unknown_share["english"]
picks_unknown = {
    name: np.mean(
        [test_sources[k][position(k, step)] == UNK for k, step in unknown_steps]
    )
    for name, position in (
        ("attention", attended_position),
        ("diagonal", diagonal_position),
    )
}
chance = np.mean(
    [
        test_sources[k][:-1].count(UNK) / (len(test_sources[k]) - 1)
        for k, _ in unknown_steps
    ]
)
print(
    f"{unknown_written:.1%} of the words written are <unk>; {english_unknown:.1%} of"
    " the reference words are outside the English vocabulary"
)
print(
    "at the <unk> steps, the Spanish word picked is unknown: "
    + ", ".join(f"{name} {share:.0%}" for name, share in picks_unknown.items())
    + f" (a random word of the verse: {chance:.0%})"
)
for name, texts in replacements.items():
    print(f"{name:>20}: " + ", ".join(f"{k} {v:.1f}" for k, v in scores(texts).items()))

# %% tags=["nbval-ignore-output"]
gain = {
    name: scores(texts)["chrF"] - scores(replacements["no replacement"])["chrF"]
    for name, texts in replacements.items()
    if name != "no replacement"
}
print(
    "chrF gained by the replacement:",
    {name: round(value, 1) for name, value in gain.items()},
)
assert unknown_written > english_unknown, (
    "the decoder writes <unk> more often than the references need"
)
assert gain["guided by attention"] > 2, (
    "replacement guided by attention raises chrF by more than two points"
)
assert gain["diagonal position"] > 0.5 * gain["guided by attention"], (
    "the diagonal gets most of the gain"
)

# %% [markdown]
# Replacement guided by attention raises chrF by more than two points (asserted), and the control
# that knows only the position gets more than half of that gain (asserted): most of the gain needs
# no attention. How much needs not even the source is printed for *the*: chrF rewards any frequent
# word in place of a token that never matches, whatever the output. The decoder
# writes `<unk>` more often than the references contain words outside its English vocabulary
# (asserted). Both papers applied the trick to the words left outside a target vocabulary of tens or
# hundreds of thousands of words (Jean et al.'s main contribution was to make that vocabulary far
# larger by sampling the softmax); ours is far smaller.
# Subword units made the trick unnecessary: with byte-pair encoding on both sides nothing is
# unknown, and BPE or its relative, sentencepiece's unigram model (Kudo, 2018), is what translation
# systems have used since.
#
# ## 8. Teacher forcing, generalisation and exposure bias
#
# The loss printed during training is teacher-forced, on the training verses. The same loss on as many
# training verses as John has, and on John, still teacher-forced, shows how much of it carries over to
# unseen text; and greedy translations of those training verses show how well the model translates
# what it was trained on:

# %% tags=["nbval-ignore-output"]
# as many as John
seen = np.random.default_rng(seed).choice(
    len(train_sources), len(test_sources), replace=False
)
training_losses = {
    name: per_word_losses(
        translators[name],
        [train_sources[k] for k in seen],
        [train_targets[k] for k in seen],
    )
    for name in trained
}
forced_loss = {
    split: {name: losses[name][0].sum() / losses[name][1].sum() for name in trained}
    for split, losses in (("training verses", training_losses), ("John", john_losses))
}
for name in trained:
    print(
        f"{name:>26}: cross-entropy per word, teacher-forced: {len(seen)} training"
        f" verses {forced_loss['training verses'][name]:.2f}, John"
        f" {forced_loss['John'][name]:.2f}"
    )
seen_words, _ = beam_search(
    translators["attention"], [train_sources[k] for k in seen], 1
)
seen_references = [" ".join(lowercase(train_verses[k].english)) for k in seen]
seen_chrf = scores([to_text(w[0]) for w in seen_words], seen_references)["chrF"]
print(
    f"attention, greedy: chrF {seen_chrf:.1f} on the {len(seen)} training verses, "
    f"{score_table['attention', 'all']['chrF']:.1f} on John; "
    f"word for word on John {score_table['word for word', 'all']['chrF']:.1f}"
)

# %%
assert all(
    forced_loss["John"][name] > forced_loss["training verses"][name] + 0.3
    for name in trained
), (
    "for every model the loss on John is over 0.3 nats per word above that on training"
    " verses"
)
assert seen_chrf < score_table["word for word", "all"]["chrF"], (
    "its own training verses, translated worse"
)

# %% [markdown]
# On John the loss is far higher than on the training verses, for both models (asserted), although
# no prediction of the model's own is fed back in either: that gap is **generalisation**, from six
# thousand verse pairs to unseen verses and to another book. But the attention
# model translates even its own training verses worse than the dictionary translates unseen John
# (asserted): at this budget it is under-trained. Decoding can add a problem of its own, which this
# chapter does not measure (chapter 5's method, scoring the model with the true previous words,
# would): the **exposure bias**. Teacher forcing trains the decoder on the *true* previous words,
# generation feeds it its *own*, and the first wrong word puts it in a state it never met in
# training (chapter 5 measured on dates how a wrong month drags the day with it). Remedies train on
# the model's own outputs: scheduled sampling feeds the model its own predictions with a growing
# probability during training (Bengio, Vinyals, Jaitly & Shazeer, 2015); sequence-level training
# optimises the metric of whole generated translations (Ranzato, Chopra, Auli & Zaremba, 2016; Shen
# et al., 2016, minimum risk training). Exposure bias has been tied to hallucinated translations
# under a shift of domain (Wang & Sennrich, 2020). Chapter 7's transformer is trained with teacher
# forcing too: in translation it replaced the RNN for speed of training and quality on large corpora
# (Vaswani et al., 2017), not because it escaped this problem.

# %% [markdown]
# ## 9. Pitfalls
#
# - **Splitting by verse instead of by book.** Neighbouring verses share names and phrases, and the
#   gospels share whole passages: a random split leaks them into the test set. Split by book.
# - **Training on shorter sentences than the test.** A decoder that never wrote a 35-word verse
#   stops early on one; a length bin beyond the training lengths then measures that, not the context.
# - **A score without a source-blind baseline.** chrF gives a fluent verse that ignores the source a clearly
#   positive score. Score a source-blind baseline beside every system.
# - **Comparing systems whose outputs differ in length by one corpus score.** chrF weights recall
#   twice as much as precision and BLEU penalises short output: a system that writes more words can
#   gain on both without translating better. Print the output lengths beside the scores.
# - **Scoring tokenised text as if detokenised.** `sacrebleu` expects detokenised output by default;
#   our references and outputs are both tokenised the same way, so BLEU uses `tokenize="none"`.
#   Scores computed with different tokenisations are not comparable: print the signature.
# - **Reading a small difference as a win.** Two systems' corpus scores differ on every test set; a
#   paired bootstrap says whether the difference would survive another sample of verses.
# - **Attention over padding.** Without the mask on the scores, the softmax gives weight to padded
#   positions, and the context averages in zeros.
# - **Re-running the decoder over the whole prefix for every new word.** The step loop carries the
#   state; it costs one step per word, not one pass over the prefix.

# %% [markdown]
# ## 10. Summary
#
# - Six thousand verses of the New Testament, split by book, make a real translation task small
#   enough to train on a CPU within the chapter, with batches bucketed by length.
# - Byte-pair encoding, in a few lines, cuts words as `sentencepiece` does and leaves nothing
#   unknown, at the price of longer sequences; our networks kept words and `<unk>`.
# - Attention queried by the current decoder state translated far better than a fixed context, in
#   every length bin, beyond the sampling noise of the test set. Its lead in teacher-forced loss was
#   larger on the longest verses than on the shortest, consistent with a small bottleneck; the fixed
#   context was far behind already on short verses.
# - A word-for-word dictionary built from human links, even restricted to the networks' vocabularies,
#   beat both networks in chrF: against six thousand verse pairs and five epochs of training, the
#   human links make it the stronger system here by that metric. A random training verse shows what
#   chrF gives fluent English that ignores the source; the fixed context did no better in chrF.
# - A beam of 4 found translations of higher model probability than greedy, and shorter ones; a
#   paired bootstrap says whether a difference in the metric survives another sample of verses, not
#   another training run.
# - Trained only to translate, the attention aligned words better than the diagonal guess, and far
#   worse than IBM Model 1, a word aligner trained on the same pairs.
# - Replacing `<unk>` by the dictionary's translation of an attended word helped, but mostly without
#   attention: a guess from the position alone got most of the gain.

# %% [markdown]
# ## 11. Exercises
#
# 1. **Length normalisation.** Beam search ranks finished hypotheses by their total log-probability,
#    which favours short ones. Re-rank the four beams of each verse (from `decoded["attention", 4]`)
#    by log-probability divided by length (words plus `</s>`): compute `normalised_choice`, the index
#    of the chosen beam for each verse. (Re-ranking the four survivors is not the same as searching
#    with the normalised score: the beam was pruned by the raw one.) Then compare the chosen
#    translations' lengths and chrF with the raw choice's.
# 2. **Vocabulary size.** How many pieces per Spanish token does a BPE vocabulary of 500, 2,000 and
#    8,000 pieces give on John? Write `pieces_per_token(size)` with `train_bpe`, trained on the same
#    training verses.

# %% tags=["solution"]
# Exercise 1: write your answer where the solution markers are.
beams, beam_log_probs = (
    decoded["attention", 4]["beams"],
    decoded["attention", 4]["beam_log_probs"],
)
### BEGIN SOLUTION
# a hypothesis's length: its words and its </s>, i.e. the ids before the padding
beam_lengths = np.maximum((beams != PAD).sum(axis=-1), 1)
normalised_choice = np.argmax(beam_log_probs / beam_lengths, axis=1)
### END SOLUTION

# %% tags=["check", "nbval-ignore-output"]
lengths_by_check = np.array(
    [
        [
            next(
                (t + 1 for t, word in enumerate(hypothesis) if word == END),
                len(hypothesis),
            )
            for hypothesis in verse_beams
        ]
        for verse_beams in beams
    ]
)
expected_choice = np.argmax(beam_log_probs / lengths_by_check, axis=1)
normalised_texts = [
    to_text(beams[k, normalised_choice[k]]) for k in range(len(test_verses))
]
raw_texts = decoded["attention", 4]["text"]
print(
    f"words per verse: raw {np.mean([len(t.split()) for t in raw_texts]):.2f},"
    f" normalised {np.mean([len(t.split()) for t in normalised_texts]):.2f}; chrF raw"
    f" {scores(raw_texts)['chrF']:.1f}, normalised"
    f" {scores(normalised_texts)['chrF']:.1f}"
)
assert normalised_choice.shape == (len(test_verses),), (
    "normalised_choice must hold one beam index per verse of John"
)
assert np.array_equal(normalised_choice, expected_choice), (
    "the beam with the best log-probability per word"
)
assert np.any(normalised_choice != 0), "on some verses it is not the raw choice"


# %% tags=["solution"]
# Exercise 2: write your answer where the solution markers are.
### BEGIN SOLUTION
def pieces_per_token(size):
    model = train_bpe(spanish_train_sentences, size)
    return sum(len(model.encode(" ".join(verse))) for verse in john_spanish) / len(
        john_words
    )


### END SOLUTION

# %% tags=["check"]
per_token = {size: pieces_per_token(size) for size in (500, 2000, 8000)}
print({size: round(value, 2) for size, value in per_token.items()})
assert np.isclose(per_token[2000], pieces_per_word), "the same count as section 2's"
assert per_token[500] > per_token[2000] > per_token[8000] > 1, (
    "pieces per token must fall as the vocabulary grows, and stay above 1"
)
