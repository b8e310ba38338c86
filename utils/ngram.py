"""Interpolated Kneser-Ney character n-gram models: the strongest table-of-counts baseline (chapter 3).

A model of order n predicts a character c from the n - 1 characters before it, its context h:

    P_n(c | h) = (count(h c) - d(count(h c))) / count(h)  +  gamma(h) / count(h) * P_{n-1}(c | h')

count(h c) is how often h was followed by c in the training text, count(h) the sum over c, and h' is
h without its first character. A discount d is taken from every character seen after h (nothing from
one never seen) and gamma(h), the sum of what was taken, is handed to the prediction of the shorter
context h'; a context never seen in training hands over everything. The recursion ends at the uniform
distribution over the alphabet (the characters of the training text), so every character keeps some
probability, and at every level the probabilities sum to 1.

The discount. With one number d (0.75 is usual) every count loses the same amount. The default,
`discount="modified"`, is Chen & Goodman's *modified* Kneser-Ney: three discounts per level, d1 for
strings seen once, d2 twice, d3 three or more times, estimated from how many strings of the level
occur exactly 1, 2, 3 and 4 times (n1 .. n4):

    Y = n1 / (n1 + 2 n2),   d1 = 1 - 2 Y n2 / n1,   d2 = 2 - 3 Y n3 / n2,   d3 = 3 - 4 Y n4 / n3

A level whose text is too small for these estimates (some n_k is 0, or a d_k falls outside (0, k))
uses 0.75 for all three.

Kneser and Ney's idea concerns the shorter contexts. They only matter when the longer one is rare, so
in every level below the top, count(h c) is replaced by a continuation count N1+(. h c): the number of
different characters seen just before h c. A string that is frequent but follows few different
characters ("ght" is common in the plays, but almost only in "-ight" and "-ought") gets a small
continuation count: after a context the training text never had, it is rarely the right guess.

References: Kneser & Ney (1995), "Improved backing-off for M-gram language modeling"; Chen & Goodman
(1998), "An empirical study of smoothing techniques for language modeling", section 3 (interpolated
Kneser-Ney, and the modified version with three discounts per level, their eq. 26 for the estimates).
"""

import math
import numbers
from collections import Counter
from typing import NamedTuple

MODIFIED = "modified"
FALLBACK_DISCOUNT = 0.75


class Level(NamedTuple):
    """The counts of one level of the recursion, for strings of `length` characters: `grams` maps a
    string to its count (raw counts at the top level, continuation counts below), `totals` maps a context
    (the string without its last character) to the sum of its counts, `discounts` holds the discounts of
    strings seen once, twice, three or more times, and `backoff` maps a context to gamma(h), the
    probability mass its discounts hand to the shorter context."""

    length: int
    grams: dict
    totals: dict
    discounts: tuple
    backoff: dict


class KneserNeyModel(NamedTuple):
    """An interpolated Kneser-Ney model: `levels[k - 1]` holds the counts of strings of k characters;
    the alphabet is sorted."""

    order: int
    alphabet: tuple
    levels: tuple

    def __repr__(self):  # the counts are far too long to print
        strings = sum(len(level.grams) for level in self.levels)
        discounts = tuple(
            tuple(round(value, 3) for value in level.discounts) for level in self.levels
        )
        return (
            f"KneserNeyModel(order={self.order}, discounts={discounts}, "
            f"{len(self.alphabet)} characters, {strings} strings counted)"
        )


def _check_order(order):
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(
            "order must be a whole number >= 1 (1 = unigram, 2 = bigram, ...); got"
            f" {order!r}"
        )


def _check_discounts(discount, order):
    """One discount per level: "modified" (three estimated from the counts) or a number strictly between
    0 and 1; a single value is used for every level."""
    discounts = (
        (discount,) * order if isinstance(discount, int | float | str) else discount
    )
    if not isinstance(discounts, tuple | list) or len(discounts) != order:
        raise ValueError(
            f"give one discount, or one per level (order = {order} of them); got"
            f" {discount!r}"
        )
    for value in discounts:
        if value == MODIFIED:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value < 1
        ):
            raise ValueError(
                f"a discount must be {MODIFIED!r} or a number strictly between 0 and 1"
                f" (0.75 is usual); got {value!r}"
            )
    return tuple(value if value == MODIFIED else float(value) for value in discounts)


def _check_train_text(train_text):
    if not isinstance(train_text, str) or not train_text:
        raise ValueError(
            f"train_text must be a non-empty string; got {train_text!r:.40}"
        )


def _check_alphabet(text, alphabet, what):
    if not isinstance(text, str):
        raise ValueError(f"the {what} must be a string; got {type(text).__name__}")
    unknown = set(text) - set(alphabet)
    if unknown:
        char = min(unknown, key=text.index)
        raise ValueError(
            f"character {char!r} (first at position {text.index(char)} of the {what})"
            " never occurs in the training text, so the model cannot give it a"
            f" probability; remove it from the {what} or train on a text that"
            " contains it"
        )


def raw_counts(text, length):
    """How often each string of `length` characters occurs in `text` (overlapping occurrences count)."""
    return Counter(
        text[start : start + length] for start in range(len(text) - length + 1)
    )


def continuation_counts(longer_counts):
    """N1+(. w) for every string w: from the counts of strings one character longer, the number of
    different characters seen just before w (each distinct longer string x w adds one).
    """
    return Counter(gram[1:] for gram in longer_counts)


def modified_discounts(grams):
    """Chen & Goodman's discounts (d1, d2, d3) for strings seen once, twice, three or more times, from
    the count-of-counts n1 .. n4 of `grams`; the fallback (0.75, 0.75, 0.75) when the counts are too few.
    """
    n = Counter(count for count in grams.values() if count <= 4)
    if min(n[1], n[2], n[3], n[4]) > 0:
        y = n[1] / (n[1] + 2 * n[2])
        estimates = (
            1 - 2 * y * n[2] / n[1],
            2 - 3 * y * n[3] / n[2],
            3 - 4 * y * n[4] / n[3],
        )
        if all(0 < value < seen for seen, value in enumerate(estimates, start=1)):
            return estimates
    return (FALLBACK_DISCOUNT,) * 3


def make_level(grams, length, discount=MODIFIED):
    """Group the counts of the strings of `length` characters by context (the string without its last
    character), with their discounts and, per context, the probability mass the discounts free.
    """
    discounts = (
        modified_discounts(grams) if discount == MODIFIED else (float(discount),) * 3
    )
    totals, backoff = Counter(), Counter()
    for gram, count in grams.items():
        totals[gram[:-1]] += count
        backoff[gram[:-1]] += discounts[min(count, 3) - 1]
    return Level(length, dict(grams), dict(totals), discounts, dict(backoff))


def _build_levels(train_text, orders, discounts):
    """The continuation levels 1 .. max(orders) - 1 (shared by every order) and the raw top level of each
    order, each string count computed once; `discounts[k - 1]` is the discount of the strings of k
    characters."""
    highest = max(orders)
    raw = {
        length: raw_counts(train_text, length)
        for length in {*range(2, highest + 1), *orders}
    }
    continuation = [
        make_level(continuation_counts(raw[length + 1]), length, discounts[length - 1])
        for length in range(1, highest)
    ]
    top = {
        order: make_level(raw[order], order, discounts[order - 1]) for order in orders
    }
    return continuation, top


def kneser_ney(train_text, order, discount=MODIFIED):
    """Count `train_text` for an interpolated Kneser-Ney model of the given order (2 = bigram: one
    character of context). `discount` is "modified" (Chen & Goodman's three estimated discounts per
    level), one number in (0, 1), or one of those per level (level 1 first)."""
    _check_order(order)
    discounts = _check_discounts(discount, order)
    _check_train_text(train_text)
    continuation, top = _build_levels(train_text, (order,), discounts)
    return KneserNeyModel(
        order, tuple(sorted(set(train_text))), (*continuation, top[order])
    )


def interpolate(level, context, char, lower_probability):
    """One step of the recursion: P(char | context) from this level's counts and the probability the
    shorter context gives (`lower_probability`). `context` holds exactly level.length - 1 characters.
    """
    total = level.totals.get(context)
    if not total:  # a context never seen: back off completely to the shorter one
        return lower_probability
    count = level.grams.get(context + char, 0)
    taken = level.discounts[min(count, 3) - 1] if count else 0.0
    return (count - taken + level.backoff[context] * lower_probability) / total


def probability(model, context, char):
    """P(char | the last order - 1 characters of context). A shorter context (at the start of a text)
    uses the levels it has, as if the longer contexts had never been seen."""
    context = context[max(len(context) - model.order + 1, 0) :]
    probability_so_far = 1 / len(model.alphabet)
    for level in model.levels[: len(context) + 1]:
        start = len(context) - (level.length - 1)
        probability_so_far = interpolate(
            level, context[start:], char, probability_so_far
        )
    return probability_so_far


def distribution(model, context):
    """The model's prediction for the character after `context`: a dict {character: probability} over
    the alphabet (the probabilities sum to 1)."""
    _check_alphabet(context, model.alphabet, "context")
    return {char: probability(model, context, char) for char in model.alphabet}


def _check_positions(positions, text, default_start):
    positions = (
        range(default_start, len(text)) if positions is None else list(positions)
    )
    if not positions:
        raise ValueError(
            f"no position to score: the text has {len(text)} characters and the first"
            f" one scored is position {default_start}; give a longer text or explicit"
            " positions"
        )
    for position in positions:
        if (
            isinstance(position, bool)
            or not isinstance(position, numbers.Integral)
            or not 0 <= position < len(text)
        ):
            raise ValueError(
                f"positions must be whole numbers from 0 to {len(text) - 1} (the text"
                f" has {len(text)} characters); got {position!r}"
            )
    return [int(position) for position in positions]


def bits_per_char(model, text, positions=None):
    """Mean of -log2 P(text[i] | the order - 1 characters before it) over `positions` (default: every
    i >= order - 1, the characters with a full context)."""
    _check_alphabet(text, model.alphabet, "text")
    positions = _check_positions(positions, text, model.order - 1)
    total_bits = 0.0
    for position in positions:
        context = text[max(position - model.order + 1, 0) : position]
        total_bits -= math.log2(probability(model, context, text[position]))
    return total_bits / len(positions)


def kneser_ney_bits(
    train_text,
    test_text,
    orders=(2, 3, 4, 5, 6, 7),
    discount=MODIFIED,
    positions=None,
    per_position=False,
):
    """Bits per character of interpolated Kneser-Ney models of several orders on `test_text`:
    {order: bits}. All orders score the same `positions` (default: every i >= max(orders) - 1). The
    counts are made once, and the levels below the top, which every order shares, are evaluated once
    per character. With per_position=True the values are lists with the bits of each position, in the
    order of `positions`, instead of their mean."""
    if not isinstance(orders, tuple | list | range) or not orders:
        raise ValueError(
            "orders must be a non-empty tuple of orders, e.g. (2, 3, 4); got"
            f" {orders!r}"
        )
    for order in orders:
        _check_order(order)
    orders = sorted(set(orders))
    highest = orders[-1]
    discounts = _check_discounts(discount, highest)
    _check_train_text(train_text)
    alphabet = tuple(sorted(set(train_text)))
    _check_alphabet(test_text, alphabet, "test text")
    positions = _check_positions(positions, test_text, highest - 1)
    continuation, top = _build_levels(train_text, orders, discounts)

    bits = {order: [] for order in orders}
    for position in positions:
        char = test_text[position]
        # lower[k]: the probability the continuation levels 1..k give, lower[0] the uniform one.
        lower = [1 / len(alphabet)]
        for level in continuation[: position + 1]:
            context = test_text[position - level.length + 1 : position]
            lower.append(interpolate(level, context, char, lower[-1]))
        for order in orders:
            # too close to the start: the levels that fit, as in probability()
            if position < order - 1:
                char_probability = lower[position + 1]
            else:
                context = test_text[position - order + 1 : position]
                char_probability = interpolate(
                    top[order], context, char, lower[order - 1]
                )
            bits[order].append(-math.log2(char_probability))
    if per_position:
        return bits
    return {order: math.fsum(values) / len(values) for order, values in bits.items()}
