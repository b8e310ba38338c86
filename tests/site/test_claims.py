"""The appendix page "How sure is each claim?" (site/claims.py): every assert of the ledger a row, its text
kept literal in the Markdown table, thin margins marked; and the built page lists every chapter.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "site"))
from claims import LEDGER, load_ledger, render  # noqa: E402

SITE = ROOT / "build" / "site" / "_build" / "html"


def entry(asserts):
    return {
        "sweep": {
            "commit": "abc1234",
            "started": "2026-12-05 10:36 UTC",
            "variables": {"ONEDNN_MAX_CPU_ISA": "AVX", "TF_NUM_INTRAOP_THREADS": "1"},
        },
        "seeds": list(range(10)),
        "not_executed": 0,
        "asserts": asserts,
    }


def item(check, message, worst=None, chance=None, executions=10, failed=()):
    return {
        "check": check,
        "message": message,
        "section": "3. Training",
        "executions": executions,
        "failed_seeds": list(failed),
        "worst": worst,
        "margin_by_seed": {},
        "failure_chance": chance,
    }


LEDGER_DEMO = {
    "chapters": {
        "01_demo": entry(
            [
                item(
                    "a | b < 2",
                    "the <unk> share stays under $2 per *word*",
                    {
                        "seed": 4,
                        "left": 1.5,
                        "operator": "<",
                        "right": 2.0,
                        "margin": 0.25,
                    },
                    chance=0.04,
                ),
                item("np.allclose(x, y)", "", executions=10),
                item("gpu_only", "cuDNN runs", executions=0),
                item(
                    "accuracy >= 0.95",
                    "solved",
                    {
                        "seed": 0,
                        "left": 1.0,
                        "operator": ">=",
                        "right": 0.95,
                        "margin": 0.05,
                    },
                    chance="same",
                ),
            ]
        )
    }
}


def test_rows_escaped_and_marked():
    page = render(LEDGER_DEMO, {"01_demo": "1. A demo"})
    rows = [line for line in page.splitlines() if line.startswith("| 3 |")]
    assert len(rows) == 4
    assert r"the \<unk\> share stays under \$2 per \*word\*<br>`a \| b < 2`" in rows[0]
    assert (
        "1.5 \\< 2 (seed 4)" in rows[0]
        and "25 %" in rows[0]
        and "1 in 25 **thin**" in rows[0]
    )
    assert "(no message)" in rows[1] and "held for every seed" in rows[1]
    assert "not executed on the CPU" in rows[2]
    assert rows[3].endswith("| 5 % | same |")
    assert (
        "for each of the seeds 0–9 in" in page
        and "one in 50" in page
        and "above 26 %" in page
    )
    assert "| [1. A demo](01_demo.ipynb) | 4 | 2 | 1 | 0 | 1 in 25 |" in page


def test_a_failed_assert_is_shown_as_failed():
    failed = {
        "chapters": {
            "01_demo": entry(
                [
                    item(
                        "x > 1",
                        "x is large",
                        {
                            "seed": 3,
                            "left": 0.5,
                            "operator": ">",
                            "right": 1.0,
                            "margin": -0.5,
                        },
                        chance=0.3,
                        failed=[3],
                    )
                ]
            )
        }
    }
    assert "**failed** for seed 3" in render(failed, {})


def test_the_stored_ledger_renders_every_chapter():
    if not LEDGER.exists():
        pytest.skip("no site/claims_ledger.json")
    ledger = load_ledger()
    page = render(ledger, {})
    for stem, chapter in ledger["chapters"].items():
        assert f"## {stem.replace('_', chr(92) + '_')}" in page
        assert sum(
            1
            for line in page.splitlines()
            if line.startswith("| ")
            and f"({stem}.ipynb)" not in line
            and "Claim" not in line
        ) >= len(chapter["asserts"])


def test_the_built_page_lists_every_chapter():
    page = SITE / "chapters" / "claims.html"
    if not page.exists():
        pytest.skip(f"{page} does not exist: run `make html` first")
    text = page.read_text(encoding="utf-8")
    assert "How sure is each claim?" in text
    for stem in load_ledger()["chapters"]:
        assert f"{stem}.html" in text, f"the page does not link chapter {stem}"


def test_a_chebyshev_bound_is_shown_as_a_bound_never_thin():
    bound = {
        "chapters": {
            "01_demo": entry(
                [
                    {
                        **item(
                            "abs(x) < 0.1",
                            "x is small",
                            {
                                "seed": 1,
                                "left": 0.05,
                                "operator": "<",
                                "right": 0.1,
                                "margin": 0.5,
                            },
                            chance=0.2,
                        ),
                        "chance_is_bound": True,
                    }
                ]
            )
        }
    }
    page = render(bound, {})
    assert "≤ 1 in 5 |" in page and "thin" not in page.split("# 01")[-1]
