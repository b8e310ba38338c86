"""The vendored data: checksums, documentation, loaders and their errors."""

import hashlib
import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from utils import data

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CHECKSUMS = dict(
    line.split()[::-1]
    for line in (DATA_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
)


@pytest.mark.parametrize("name", sorted(CHECKSUMS))
def test_file_matches_recorded_checksum(name):
    assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == CHECKSUMS[name]


@pytest.mark.parametrize("name", sorted(CHECKSUMS))
def test_readme_documents_file_and_checksum(name):
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert name in readme and CHECKSUMS[name] in readme


def test_every_data_file_is_listed():
    files = {str(p.relative_to(DATA_DIR)) for p in DATA_DIR.rglob("*") if p.is_file()}
    unlisted = files - set(CHECKSUMS) - {"README.md", "SHA256SUMS", "build_data.py"}
    assert not unlisted, f"files in data/ without a checksum: {sorted(unlisted)}"


def test_data_stays_small():
    total = sum(p.stat().st_size for p in DATA_DIR.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024


def test_seattle_splits_are_whole_years():
    sizes = {
        split: len(data.load_seattle_weather(split)["date"])
        for split in ("train", "valid", "test", "all")
    }
    assert sizes == {"train": 731, "valid": 365, "test": 365, "all": 1461}
    test = data.load_seattle_weather("test")
    assert (
        str(test["date"][0]) == "2015-01-01" and str(test["date"][-1]) == "2015-12-31"
    )
    assert test["temp_max"].dtype == np.float32
    assert np.all(np.diff(data.load_seattle_weather("all")["date"]).astype(int) == 1)


def test_movie_sentences_sizes_and_labels():
    texts, labels = data.load_movie_sentences("all")
    assert len(texts) == len(labels) == 10_605 - 37
    assert set(np.unique(labels)) == {0, 1}
    sizes = {
        split: len(data.load_movie_sentences(split)[0])
        for split in ("train", "valid", "test")
    }
    assert sum(sizes.values()) == len(texts)
    assert sizes["test"] > 1000 and sizes["valid"] > 1000


def test_shakespeare_splits_do_not_overlap():
    train, valid, test = (
        data.load_shakespeare(split) for split in ("train", "valid", "test")
    )
    assert len(train) > 700_000 and len(valid) > 90_000 and len(test) > 90_000
    assert "HAMLET" in train and "Prospero" not in train and "Prospero" in test
    assert valid[:200] not in train and test[:200] not in train


def test_char_windows_are_shifted_by_one_character():
    ids = {char: index for index, char in enumerate("abcdefg")}
    inputs, targets = data.char_windows("abcdefg", ids, 3)
    assert inputs.tolist() == [[0, 1, 2], [3, 4, 5]] and targets.tolist() == [
        [1, 2, 3],
        [4, 5, 6],
    ]
    assert inputs.dtype == np.int32


def test_parallel_verses_split_by_book_with_links_in_range():
    splits = {
        split: data.load_parallel_verses(split) for split in ("train", "valid", "test")
    }
    assert {split: len(verses) for split, verses in splits.items()} == {
        "train": 6602,
        "valid": 429,
        "test": 879,
    }
    books = {
        split: {verse.book for verse in verses} for split, verses in splits.items()
    }
    assert (
        books["test"] == {"John"}
        and books["valid"] == {"Romans"}
        and len(books["train"]) == 24
    )
    for verse in data.load_parallel_verses("all"):
        assert (
            verse.english
            and verse.spanish
            and all(verse.english)
            and all(verse.spanish)
        )
        assert all(
            0 <= i < len(verse.english) and 0 <= j < len(verse.spanish)
            for i, j in verse.links
        )
    (john_3_16,) = [v for v in splits["test"] if (v.chapter, v.verse) == (3, 16)]
    assert (
        john_3_16.english[:4] == ("For", "God", "so", "loved")
        and "amó" in john_3_16.spanish
    )
    assert (
        john_3_16.english.index("loved"),
        john_3_16.spanish.index("amó"),
    ) in john_3_16.links
    assert "born" in john_3_16.english and "Greek" not in john_3_16.english, (
        "footnotes are dropped"
    )


def test_bach_chorales_split_by_tune_on_an_eighth_note_grid():
    splits = {
        split: data.load_bach_chorales(split) for split in ("train", "valid", "test")
    }
    assert {split: len(chorales) for split, chorales in splits.items()} == {
        "train": 311,
        "valid": 48,
        "test": 46,
    }
    tunes = {split: {c.tune for c in chorales} for split, chorales in splits.items()}
    assert not (
        tunes["train"] & tunes["valid"]
        or tunes["train"] & tunes["test"]
        or tunes["valid"] & tunes["test"]
    )
    melodies = {
        split: {
            tuple(np.diff([p for p in c.voices[:, 0] if p > 0])[:12]) for c in chorales
        }
        for split, chorales in splits.items()
    }
    assert not melodies["train"] & melodies["test"], (
        "a test tune's opening is in the training chorales"
    )

    def runs(chorale, length=14):  # every run of `length` consecutive soprano intervals
        intervals = tuple(np.diff([p for p in chorale.voices[:, 0] if p > 0]))
        return {intervals[i : i + length] for i in range(len(intervals) - length + 1)}

    shared = set().union(*map(runs, splits["train"])) & set().union(
        *map(runs, splits["test"])
    )
    assert not shared, (
        "a test soprano shares a run of 14 intervals with a training one: a tune in two"
        " splits"
    )
    for chorale in data.load_bach_chorales("all"):
        pitches = np.abs(chorale.voices)
        assert chorale.voices.dtype == np.int16 and chorale.voices.shape[1] == 4
        assert np.all((pitches == 0) | ((pitches >= 36) & (pitches <= 81))), (
            chorale.name
        )
        assert all(
            0 <= step < len(chorale.voices)
            for step in chorale.bar_starts + chorale.fermatas
        )
        # a held value continues the pitch before it, except where a note began between two grid points
        held = chorale.voices[1:] < 0
        continued = np.abs(chorale.voices[1:]) == np.abs(chorale.voices[:-1])
        assert np.mean(continued[held]) > 0.97, chorale.name
    # BWV 66.6 begins (soprano) C#5 and B4 as eighths, A4 and B4 as quarters, then C#5 with a fermata
    (bwv66,) = [
        c
        for c in splits["train"] + splits["valid"] + splits["test"]
        if c.name == "bwv66.6"
    ]
    assert bwv66.voices[:8, 0].tolist() == [73, 71, 69, -69, 71, -71, 73, -73]
    assert (
        bwv66.fermatas[0] == 6 and bwv66.bar_starts[0] == 2 and bwv66.key == "F# minor"
    )


@pytest.mark.parametrize(
    "loader",
    [
        data.load_seattle_weather,
        data.load_movie_sentences,
        data.load_shakespeare,
        data.load_parallel_verses,
        data.load_bach_chorales,
    ],
)
def test_bad_split_is_a_value_error(loader):
    with pytest.raises(ValueError, match="split must be one of"):
        loader("training")


def test_unknown_file_is_a_value_error():
    with pytest.raises(ValueError, match="not a file of data/"):
        data.verified_path("no_such_file.csv")


@pytest.fixture
def data_copy(tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    return copy


RESTORE_COMMANDS = (  # both work without make
    r".*git checkout -- data/.*python data/build_data.py"
)


def test_missing_file_names_file_and_restore_commands(data_copy):
    (data_copy / "seattle_weather.csv").unlink()
    with pytest.raises(
        data.DataFileError, match=r"seattle_weather.csv is missing" + RESTORE_COMMANDS
    ):
        data.load_seattle_weather("train", data_dir=data_copy)


def test_corrupt_file_names_file_and_restore_commands(data_copy):
    path = data_copy / "shakespeare" / "tempest.txt"
    path.write_bytes(path.read_bytes().replace(b"Prospero", b"Prosperp", 1))
    with pytest.raises(
        data.DataFileError, match=r"tempest.txt is corrupt" + RESTORE_COMMANDS
    ):
        data.load_shakespeare("test", data_dir=data_copy)


def test_missing_checksum_list_is_explained(data_copy):
    (data_copy / "SHA256SUMS").unlink()
    with pytest.raises(data.DataFileError, match="SHA256SUMS is missing"):
        data.load_movie_sentences("train", data_dir=data_copy)


def test_tunes_are_linked_by_their_opening_or_by_a_long_shared_run():
    build_data = importlib.import_module("data.build_data")
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    tune = scale * 3  # 23 intervals
    varied = [60] + [61] + tune[1:]  # a new note in the opening, the rest the same
    # no long run in common with the others
    other = [60, 67, 60, 67, 62, 69, 62, 69] * 3
    chained = other[:13] + tune[:18]  # opens like `other`, then 17 intervals of `tune`
    assert build_data.tune_groups([tune, varied, other]) == [[0, 1], [2]]
    # links are closed: one tune
    assert build_data.tune_groups([tune, other, chained]) == [[0, 1, 2]]
    # same opening, too short for a run
    assert build_data.tune_groups([tune[:12], tune[:12]]) == [[0, 1]]
