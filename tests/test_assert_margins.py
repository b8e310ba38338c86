"""tests.assert_margins and tests.sweep: every assert recorded with its margin, and the sweep's summary."""

import json
import subprocess
import sys

import pytest

from tests import sweep
from tests.assert_margins import relative_margin, run_chapter

SCRIPT = """
import numpy as np
value = 3.0
assert value < 4, "room: a quarter"
assert 0 < value <= 3
def check(x):
    assert x > 10, f"x is {x}"
check(4)
assert np.allclose([1.0], [1.0])
missing = None
assert missing is None or missing > 3
assert value > 1 and value > 5 and 1 / 0
"""


def test_relative_margin():
    assert relative_margin(3, "<", 4) == pytest.approx(0.25)
    assert relative_margin(5, ">", 4) == pytest.approx(0.2)
    assert relative_margin(4, ">", 5) == pytest.approx(-0.2)
    assert relative_margin(True, "<", 2) is None and relative_margin(1, "==", 1) is None


def test_every_assert_is_recorded_and_the_run_goes_on(tmp_path):
    chapter = tmp_path / "chapter" / "01_demo.py"
    chapter.parent.mkdir()
    chapter.write_text(SCRIPT, encoding="utf-8")
    log = tmp_path / "log.jsonl"
    failures = run_chapter(chapter, log)
    records = [
        json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()
    ]
    asserts = {r["line"]: r for r in records if "line" in r}
    assert failures == 2 and "seconds" in records[-1]
    assert asserts[4]["passed"] and asserts[4]["margin"] == pytest.approx(0.25)
    assert asserts[5]["margin"] == 0.0  # value <= 3 with value 3: no room left
    assert not asserts[7]["passed"] and asserts[7]["message"] == "x is 4"
    assert asserts[9]["passed"] and asserts[9]["margin"] is None
    assert asserts[11]["passed"]  # `or` is evaluated as written
    # `and` stops at the first failure
    assert not asserts[12]["passed"] and len(asserts[12]["links"]) == 2


def test_not_a_chapter_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="not a chapter source"):
        run_chapter(tmp_path / "missing.py", tmp_path / "log.jsonl")


def test_parse_seeds():
    assert sweep.parse_seeds("0-3") == [0, 1, 2, 3]
    assert sweep.parse_seeds("7, 1-2,42") == [1, 2, 7, 42]
    for bad in ("", "5-2"):
        with pytest.raises(ValueError):
            sweep.parse_seeds(bad)


def test_sweep_summary_names_failures_and_tightest_margins(tmp_path):
    chapter = tmp_path / "chapters" / "01_demo.py"
    chapter.parent.mkdir()
    chapter.write_text(
        "import os\nseed = int(os.environ['BOOK_SEED'])\nassert seed < 2, 'small seeds"
        " only'\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.sweep",
            "--seeds",
            "0-3",
            "--jobs",
            "1",
            "--out",
            str(out),
            str(chapter),
        ],
        capture_output=True,
        text=True,
        cwd=sweep.ROOT,
    )
    assert result.returncode == 0, result.stderr
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "## 01_demo (seeds [0, 1, 2, 3])" in summary
    assert (
        "FAILED for seeds [2, 3]" in summary
        and "worst margin -33.3% (seed 3: 3 < 2)" in summary
    )
