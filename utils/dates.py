"""Dates written in several languages, with their ISO form: a deterministic seq2seq task (chapters 5 and 7).

The texts come from the CLDR data shipped with Babel (`babel.dates.format_date`), e.g.
"Donnerstag, 7. März 2024" or "2024年3月7日星期四" for the target "2024-03-07".

The train/valid/test split is fixed and depends on the date only: by the CRC-32 of its ISO string
modulo 10, a date is a test date when it is 0, a validation date when it is 1 (about one date in ten
each), else a training date. No validation or test date ever appears in training, in any language or
style, and the split does not depend on the seed.
"""

import datetime
import unicodedata
import zlib

import numpy as np
from babel.dates import format_date

LOCALES = ("en", "de", "fr", "zh")
STYLES = ("full", "long", "medium")
DEFAULT_YEARS = (1950, 2049)
SPLITS = ("train", "test", "valid")  # in this order: a split's index seeds its draws


def _check_locales(locales):
    locales = tuple(locales)
    unknown = [locale for locale in locales if locale not in LOCALES]
    if not locales or unknown:
        raise ValueError(
            f"locales must be a non-empty selection of {LOCALES}; got {locales!r}"
        )
    return locales


def _check_years(years):
    if (
        not isinstance(years, tuple | list)
        or len(years) != 2
        or not all(
            isinstance(year, int) and not isinstance(year, bool) for year in years
        )
    ):
        raise ValueError(
            "years must be a pair of whole numbers (first, last), e.g. (1950, 2049);"
            f" got {years!r}"
        )
    first, last = years
    if not 1 <= first <= last <= 9999:
        raise ValueError(
            f"years must satisfy 1 <= first <= last <= 9999; got {years!r}"
        )
    return first, last


def date_text(date, locale, style="full"):
    """The date written as in `locale` ("en", "de", "fr", "zh") and CLDR `style` ("full", "long", "medium").

    Unusual spaces (narrow no-break space and the like) become plain spaces.
    """
    if locale not in LOCALES:
        raise ValueError(f"locale must be one of {LOCALES}; got {locale!r}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}; got {style!r}")
    if not isinstance(date, datetime.date):
        raise ValueError(f"date must be a datetime.date; got {date!r}")
    text = format_date(date, style, locale=locale)
    return "".join(" " if unicodedata.category(char) == "Zs" else char for char in text)


def split_of(date):
    """The fixed split of a date: by crc32 of its ISO string modulo 10, "test" for 0, "valid" for 1, else "train"."""
    return {0: "test", 1: "valid"}.get(
        zlib.crc32(date.isoformat().encode("ascii")) % 10, "train"
    )


def dates_in_split(split, years=DEFAULT_YEARS):
    """All dates of the years `years` = (first, last), both included, that belong to `split` (one of SPLITS)."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train', 'valid' or 'test'; got {split!r}")
    first, last = _check_years(years)
    start, end = datetime.date(first, 1, 1), datetime.date(last, 12, 31)
    days = (
        start + datetime.timedelta(days=offset)
        for offset in range((end - start).days + 1)
    )
    return [date for date in days if split_of(date) == split]


def make_date_pairs(
    count, split, seed, years=DEFAULT_YEARS, locales=LOCALES, styles=STYLES
):
    """`count` pairs (text, ISO date) drawn from `split`, the same for the same arguments.

    Each pair takes a date of the split at random (with replacement), a locale and a style; the
    locales take turns, so each one gets count // len(locales) pairs or one more.
    Returns (texts, targets, locales_used): three lists of str of length `count`.
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive whole number; got {count!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number; got {seed!r}")
    locales = _check_locales(locales)
    styles = tuple(styles)
    if not styles or any(style not in STYLES for style in styles):
        raise ValueError(
            f"styles must be a non-empty selection of {STYLES}; got {styles!r}"
        )
    pool = dates_in_split(split, years)
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    date_indices = rng.integers(len(pool), size=count)
    style_indices = rng.integers(len(styles), size=count)
    locale_order = rng.permutation(count) % len(locales)
    texts, targets, locales_used = [], [], []
    for date_index, style_index, locale_index in zip(
        date_indices, style_indices, locale_order, strict=True
    ):
        date, locale = pool[date_index], locales[locale_index]
        texts.append(date_text(date, locale, styles[style_index]))
        targets.append(date.isoformat())
        locales_used.append(locale)
    return texts, targets, locales_used
