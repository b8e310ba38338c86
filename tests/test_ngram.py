"""utils.ngram: interpolated Kneser-Ney character n-gram models."""

import math
from fractions import Fraction

import pytest

from utils import ngram
from utils.data import load_shakespeare

TEXT = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die-to sleep,\n"
    "No more; and by a sleep to say we end\n"
    "The heart-ache and the thousand natural shocks\n"
    "That flesh is heir to: 'tis a consummation\n"
    "Devoutly to be wish'd.\n"
)
HELD_OUT = "To sleep, perchance to dream - ay, there's the rub:\n"
# Long enough for strings seen 1, 2, 3 and 4 times at the levels above the first, so that the modified
# discounts are estimated there rather than the fallback.
PLAY_START = load_shakespeare("valid")[:5000]


@pytest.mark.parametrize("order", range(1, 8))
@pytest.mark.parametrize(
    "context",
    [
        "To be, or not to b",  # seen
        "ssssss",  # never seen, of any length above one
        "",  # the start of a text
        "T",  # shorter than the context of most orders
        "e, o",
        "Wq:D;W",  # unseen strings in a row
    ],
)
@pytest.mark.parametrize(
    ("text", "discount"),
    [(TEXT, "modified"), (TEXT, 0.75), (PLAY_START + TEXT, "modified")],
)
def test_distribution_sums_to_one(order, context, text, discount):
    model = ngram.kneser_ney(text, order, discount=discount)
    probabilities = ngram.distribution(model, context)
    assert set(probabilities) == set(text)
    assert all(p > 0 for p in probabilities.values())
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-9)


def test_per_level_discounts_still_give_a_distribution():
    model = ngram.kneser_ney(TEXT, 4, discount=(0.5, 0.6, 0.7, 0.8))
    assert math.isclose(
        sum(ngram.distribution(model, "the ").values()), 1.0, abs_tol=1e-9
    )


def test_order_one_is_the_relative_frequency():
    # Every character of the alphabet is seen, so the discount taken and handed back cancel out.
    model = ngram.kneser_ney(TEXT, 1, discount=0.75)
    probabilities = ngram.distribution(model, "anything")
    assert math.isclose(probabilities["e"], TEXT.count("e") / len(TEXT))


def test_bigram_and_trigram_match_a_hand_computation():
    # "abracadabra", D = 3/4, alphabet {a, b, c, d, r}. The bigram types ab br ra ac ca ad da give the
    # continuation counts a: 3 (after r, c, d), b: 1, c: 1, d: 1, r: 1, so 7 in all, 5 different:
    # P1(a) = (3 - 3/4)/7 + (3/4 * 5/7) * 1/5 = 3/7.
    model = ngram.kneser_ney("abracadabra", 2, discount=0.75)
    bigram = {
        char: Fraction(p).limit_denominator(1000)
        for char, p in ngram.distribution(model, "a").items()
    }
    # After "a" the training text has b twice, c once, d once: total 4, three different followers.
    backoff = Fraction(3, 4) * 3 / 4
    assert (
        bigram["b"]
        == (2 - Fraction(3, 4)) / 4 + backoff * Fraction(1, 7)
        == Fraction(11, 28)
    )
    assert bigram["a"] == backoff * Fraction(3, 7) == Fraction(27, 112)
    assert bigram["r"] == backoff * Fraction(1, 7)
    # The bigram level below a trigram counts continuations: "ra" follows one character (b), so
    # P2(a | r) = (1 - 3/4)/1 + 3/4 * P1(a) = 4/7, where the raw bigram count (2) would give 11/14.
    trigram = ngram.kneser_ney("abracadabra", 3, discount=0.75)
    assert math.isclose(
        ngram.distribution(trigram, "br")["a"], (2 - 0.75) / 2 + 0.75 / 2 * 4 / 7
    )
    assert math.isclose(ngram.distribution(model, "r")["a"], 11 / 14)
    # "cb" never occurs: the trigram backs off completely to the continuation bigram of "b",
    # P2(r | b) = 1/4 + 3/4 * P1(r) = 5/14.
    assert math.isclose(ngram.distribution(trigram, "cb")["r"], 5 / 14)


def test_a_longer_context_keeps_only_its_last_characters():
    model = ngram.kneser_ney(TEXT, 3)
    assert ngram.distribution(model, "whatever to b") == ngram.distribution(model, " b")


def test_bits_per_char_is_the_mean_log_loss_of_the_distribution():
    model = ngram.kneser_ney(TEXT, 3)
    expected = -sum(
        math.log2(ngram.distribution(model, HELD_OUT[i - 2 : i])[HELD_OUT[i]])
        for i in range(2, len(HELD_OUT))
    ) / (len(HELD_OUT) - 2)
    assert math.isclose(ngram.bits_per_char(model, HELD_OUT), expected)


def test_several_orders_at_once_agree_with_one_model_each():
    orders = (1, 2, 3, 5)
    for positions in (None, range(len(HELD_OUT)), [0, 1, 7]):
        together = ngram.kneser_ney_bits(
            TEXT, HELD_OUT, orders=orders, positions=positions
        )
        default = range(max(orders) - 1, len(HELD_OUT))
        for order in orders:
            alone = ngram.bits_per_char(
                ngram.kneser_ney(TEXT, order), HELD_OUT, positions or default
            )
            assert math.isclose(together[order], alone), (order, positions)


def test_longer_contexts_help_on_seen_text():
    bits = ngram.kneser_ney_bits(TEXT, TEXT, orders=(1, 2, 3, 4))
    assert bits[1] > bits[2] > bits[3] > bits[4]


@pytest.mark.parametrize("order", [0, -1, 1.5, True, "3"])
def test_rejects_a_bad_order(order):
    with pytest.raises(ValueError, match="order must be a whole number"):
        ngram.kneser_ney(TEXT, order)


@pytest.mark.parametrize(
    "discount", [0, 1, 1.2, -0.1, True, None, "0.5", (0.5, 0.5), (0.5, 0.5, 1.5)]
)
def test_rejects_a_bad_discount(discount):
    with pytest.raises(ValueError, match="discount"):
        ngram.kneser_ney(TEXT, 3, discount=discount)


@pytest.mark.parametrize("train_text", ["", None])
def test_rejects_an_empty_training_text(train_text):
    with pytest.raises(ValueError, match="non-empty string"):
        ngram.kneser_ney(train_text, 2)


def test_names_a_character_the_training_text_lacks():
    model = ngram.kneser_ney(TEXT, 2)
    with pytest.raises(
        ValueError, match=r"character 'z' \(first at position 3 of the text\)"
    ):
        ngram.bits_per_char(model, "To zebra")
    with pytest.raises(ValueError, match="'z'"):
        ngram.distribution(model, "zo")
    with pytest.raises(ValueError, match="'z'"):
        ngram.kneser_ney_bits(TEXT, "To zebra", orders=(2,))


def test_rejects_bad_positions():
    model = ngram.kneser_ney(TEXT, 5)
    with pytest.raises(ValueError, match="no position to score"):
        ngram.bits_per_char(model, "To b")
    with pytest.raises(ValueError, match="positions must be whole numbers"):
        ngram.bits_per_char(model, HELD_OUT, positions=[4, len(HELD_OUT)])
    with pytest.raises(ValueError, match="non-empty tuple of orders"):
        ngram.kneser_ney_bits(TEXT, HELD_OUT, orders=())
    with pytest.raises(ValueError, match="order must be a whole number"):
        ngram.kneser_ney_bits(TEXT, HELD_OUT, orders=(2, "3"))


def test_a_model_prints_briefly():
    assert (
        repr(ngram.kneser_ney("abracadabra", 2, discount=0.75))
        == "KneserNeyModel(order=2, discounts=((0.75, 0.75, 0.75), (0.75, 0.75, 0.75)),"
        " 5 characters, 12 strings counted)"
    )


def test_numpy_integer_positions_are_accepted():
    import numpy as np

    model = ngram.kneser_ney("abracadabra", 3)
    assert ngram.bits_per_char(
        model, "abracadabra", positions=np.array([3, 5])
    ) == ngram.bits_per_char(model, "abracadabra", positions=[3, 5])


def test_per_position_bits_average_to_the_mean():
    text = "abracadabra arbadacarba"
    means = ngram.kneser_ney_bits(text, text, orders=(2, 3))
    each = ngram.kneser_ney_bits(text, text, orders=(2, 3), per_position=True)
    for order in (2, 3):
        assert len(each[order]) == len(text) - 2
        assert math.isclose(
            sum(each[order]) / len(each[order]), means[order], rel_tol=1e-12
        )


def test_modified_discounts_follow_chen_and_goodman():
    # n1 = 4, n2 = 2, n3 = 1, n4 = 1 (a count of 7 does not enter): Y = 4 / (4 + 2 * 2) = 1/2,
    # d1 = 1 - 2 Y n2/n1 = 1/2, d2 = 2 - 3 Y n3/n2 = 5/4, d3 = 3 - 4 Y n4/n3 = 1.
    grams = {"a": 1, "b": 1, "c": 1, "d": 1, "e": 2, "f": 2, "g": 3, "h": 4, "i": 7}
    assert ngram.modified_discounts(grams) == pytest.approx((0.5, 1.25, 1.0))


@pytest.mark.parametrize(
    "grams",
    [
        {"a": 1, "b": 2, "c": 4},  # no string seen three times
        {
            "a": 1,
            "b": 1,
            "c": 2,
            "d": 3,
            "e": 4,
            **{f"x{i}": 3 for i in range(40)},
        },  # d2 would be negative
    ],
)
def test_modified_discounts_fall_back_when_the_counts_are_too_few(grams):
    assert ngram.modified_discounts(grams) == (0.75, 0.75, 0.75)


def test_a_seen_string_loses_the_discount_of_its_count():
    # Context "x" followed by a once, b twice, c five times: total 8, d = (0.5, 1.25, 1.0) by count.
    level = ngram.make_level({"xa": 1, "xb": 2, "xc": 5}, 2)._replace(
        discounts=(0.5, 1.25, 1.0), backoff={"x": 0.5 + 1.25 + 1.0}
    )
    lower = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}
    probabilities = {
        char: ngram.interpolate(level, "x", char, p) for char, p in lower.items()
    }
    assert probabilities["a"] == pytest.approx((1 - 0.5 + 2.75 * 0.1) / 8)
    assert probabilities["c"] == pytest.approx((5 - 1.0 + 2.75 * 0.3) / 8)
    assert probabilities["d"] == pytest.approx(2.75 * 0.4 / 8)
    assert math.isclose(sum(probabilities.values()), 1.0)


def test_a_real_text_has_estimated_discounts_above_the_first_level():
    model = ngram.kneser_ney(PLAY_START, 6)
    estimated = [
        level.discounts
        for level in model.levels
        if level.discounts != (0.75, 0.75, 0.75)
    ]
    assert len(estimated) == 5
    assert all(0 < d1 < 1 and 0 < d2 < 2 and 0 < d3 < 3 for d1, d2, d3 in estimated)
