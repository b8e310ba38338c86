"""utils.dates: the multilingual date task of chapter 5."""

import datetime

import pytest

from utils import dates


def test_same_arguments_same_pairs():
    assert dates.make_date_pairs(50, "train", seed=3) == dates.make_date_pairs(
        50, "train", seed=3
    )
    assert dates.make_date_pairs(50, "train", seed=3) != dates.make_date_pairs(
        50, "train", seed=4
    )


def test_the_three_splits_are_disjoint_and_cover_every_day():
    train, valid, test = (
        set(dates.dates_in_split(split)) for split in ("train", "valid", "test")
    )
    assert not train & test and not train & valid and not valid & test
    every_day = train | valid | test
    assert (
        len(every_day)
        == (datetime.date(2049, 12, 31) - datetime.date(1950, 1, 1)).days + 1
    )
    assert (
        0.08 < len(test) / len(every_day) < 0.12
        and 0.08 < len(valid) / len(every_day) < 0.12
    )


def test_pairs_respect_the_split():
    _, test_targets, _ = dates.make_date_pairs(500, "test", seed=0)
    _, train_targets, _ = dates.make_date_pairs(2000, "train", seed=0)
    assert all(
        dates.split_of(datetime.date.fromisoformat(target)) == "test"
        for target in test_targets
    )
    assert not set(test_targets) & set(train_targets)
    _, valid_targets, _ = dates.make_date_pairs(500, "valid", seed=0)
    assert all(
        dates.split_of(datetime.date.fromisoformat(target)) == "valid"
        for target in valid_targets
    )
    assert not set(valid_targets) & (set(train_targets) | set(test_targets))


def test_every_locale_is_present_in_equal_shares():
    _, _, locales = dates.make_date_pairs(402, "train", seed=1)
    assert sorted(set(locales)) == sorted(dates.LOCALES)
    assert {locales.count(locale) for locale in dates.LOCALES} == {100, 101}


@pytest.mark.parametrize(
    ("locale", "style", "text"),
    [
        ("en", "full", "Thursday, March 7, 2024"),
        ("de", "full", "Donnerstag, 7. März 2024"),
        ("fr", "long", "7 mars 2024"),
        ("zh", "full", "2024年3月7日星期四"),
        ("de", "medium", "07.03.2024"),
    ],
)
def test_known_texts(locale, style, text):
    assert dates.date_text(datetime.date(2024, 3, 7), locale, style) == text


def test_targets_are_the_iso_dates_of_the_texts():
    texts, targets, locales = dates.make_date_pairs(
        40, "test", seed=2, styles=("long",)
    )
    for text, target, locale in zip(texts, targets, locales, strict=True):
        assert text == dates.date_text(
            datetime.date.fromisoformat(target), locale, "long"
        )
        assert len(target) == 10 and target[4] == target[7] == "-"


def test_only_plain_spaces():
    texts, _, _ = dates.make_date_pairs(300, "train", seed=5)
    assert all(char == " " or not char.isspace() for text in texts for char in text)


def test_years_are_respected():
    _, targets, _ = dates.make_date_pairs(100, "train", seed=0, years=(2000, 2001))
    assert {target[:4] for target in targets} <= {"2000", "2001"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "count"),
        ({"count": 2.5}, "count"),
        ({"split": "validation"}, "split"),
        ({"seed": -1}, "seed"),
        ({"locales": ("en", "es")}, "locales"),
        ({"locales": ()}, "locales"),
        ({"styles": ("short",)}, "styles"),
        ({"years": (2049, 1950)}, "years"),
        ({"years": (1950,)}, "years"),
        ({"years": (0, 10)}, "years"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    arguments = {"count": 10, "split": "train", "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        dates.make_date_pairs(**arguments)


def test_date_text_rejects_bad_arguments():
    with pytest.raises(ValueError, match="locale"):
        dates.date_text(datetime.date(2024, 3, 7), "xx")
    with pytest.raises(ValueError, match="style"):
        dates.date_text(datetime.date(2024, 3, 7), "en", "tiny")
    with pytest.raises(ValueError, match="date"):
        dates.date_text("2024-03-07", "en")
