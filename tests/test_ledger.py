"""tests/ledger.py, the claims ledger's builder: asserts matched through the swept commit's code (which must
be the chapter's code now, messages aside), the predicted chance of failing, and the stored ledger's
freshness."""

import json
import math

import pytest

from tests import ledger, sweep

CHAPTER = """# %% [markdown]
# ## 1. First
x = 3
assert x > 1, "x is large"
# %% [markdown]
# ## 2. Second
for k in range(2):
    assert x * k < 10, f"small for {k}"
assert (x ==
        3)
assert x > 1
"""
# The same code as swept earlier with other messages and lines: the sweep's records name these lines.
SWEPT = """x = 3
assert x > 1, "old message"
for k in range(2):
    assert x * k < 10
assert (x == 3)
assert x > 1
"""


def write_manifest(directory, perturbed):
    """A sweep.json as tests/sweep.py writes it, for a committed tree."""
    (directory / "sweep.json").write_text(
        json.dumps(
            {
                "environment": "perturbed" if perturbed else "reference",
                "variables": {"TF_NUM_INTRAOP_THREADS": "1"},
                "commit": "abc1234",
                "uncommitted_changes": False,
                "started": "2026-12-05 10:36 UTC",
            }
        ),
        encoding="utf-8",
    )


def record(line, passed=True, left=None, operator=None, right=None, margin=None):
    links = (
        []
        if operator is None
        else [
            {
                "operator": operator,
                "left": left,
                "right": right,
                "margin": margin,
                "passed": passed,
            }
        ]
    )
    return {
        "line": line,
        "source": "assert ...",
        "statement": "assert ...",
        "passed": passed,
        "margin": margin,
        "links": links,
    }


def test_chapter_asserts_in_order_with_check_message_and_section():
    found = ledger.chapter_asserts(CHAPTER)
    assert [(item.check, item.message, item.section) for item in found] == [
        ("x > 1", "x is large", "1. First"),
        ("x * k < 10", "small for …", "2. Second"),
        ("x == 3", "", "2. Second"),
        ("x > 1", "", "2. Second"),
    ]


def test_the_fingerprint_ignores_messages_comments_and_layout_not_code():
    assert ledger.code_fingerprint(CHAPTER) == ledger.code_fingerprint(SWEPT)
    assert ledger.code_fingerprint(CHAPTER) != ledger.code_fingerprint(
        CHAPTER.replace("x = 3", "x = 4")
    )
    plain = 'ρ = 0.5\nassert abs(ρ - 0.5) < 1e-5  # note\ny = "×"\n'
    for worded in (
        'ρ = 0.5\nassert abs(ρ - 0.5) < 1e-5, "ρ is ½"  # note\ny = "×"\n',
        'ρ = 0.5\nassert abs(ρ - 0.5) < 1e-5, \\\n    "ρ is ½"\ny = "×"\n',
        'ρ = 0.5\nassert abs(ρ - 0.5) < 1e-5, (  # note\n    "ρ is ½")\ny = "×"\n',
    ):
        assert ledger.code_fingerprint(worded) == ledger.code_fingerprint(plain), worded
    # what `ruff format` changes (parentheses, trailing commas, quotes, split strings) and docstrings do not
    # count; a changed string that is not a docstring does
    compact = 'def f(a, b):\n    """Sum."""\n    return g(a, b, "x y")\n'
    formatted = (
        'def f(\n    a,\n    b,\n):\n    """The sum,\n    said otherwise.\n    """\n'
        "    return g(\n        a,\n        b,\n        'x' ' y',\n    )\n"
    )
    assert ledger.code_fingerprint(compact) == ledger.code_fingerprint(formatted)
    assert ledger.code_fingerprint(compact) != ledger.code_fingerprint(
        compact.replace("x y", "x z")
    )


def test_records_matched_through_the_swept_code(tmp_path):
    write_manifest(tmp_path, perturbed=True)
    source = tmp_path / "01_demo.py"
    source.write_text(CHAPTER, encoding="utf-8")
    seeds = {
        0: [
            record(2, left=3.0, operator=">", right=1.0, margin=0.67),
            record(4, left=0.0, operator="<", right=10.0, margin=1.0),
            record(4, left=3.0, operator="<", right=10.0, margin=0.7),
            record(6, left=3.0, operator=">", right=1.0, margin=0.2),
        ],
        1: [record(2, passed=False, left=0.5, operator=">", right=1.0, margin=-0.5)],
    }
    entry = ledger.chapter_entry(source, tmp_path, seeds, swept=SWEPT)
    first, second, third, fourth = entry["asserts"]
    assert (
        first["failed_seeds"] == [1]
        and first["worst"]["seed"] == 1
        and first["worst"]["margin"] == -0.5
    )
    assert (
        first["margin_by_seed"] == {"0": 0.67, "1": -0.5}
        and first["message"] == "x is large"
    )
    assert (
        second["executions"] == 2
        and second["worst"]["margin"] == 0.7
        and second["margin_by_seed"] == {"0": 0.7}
    )
    assert (
        third["executions"] == 0
        and third["worst"] is None
        and entry["not_executed"] == 1
    )
    assert fourth["worst"]["margin"] == 0.2 and fourth["failed_seeds"] == []
    assert entry["fingerprint"] == ledger.code_fingerprint(CHAPTER)
    json.dumps(entry)  # storable


def test_a_sweep_of_other_code_is_refused(tmp_path):
    write_manifest(tmp_path, perturbed=True)
    source = tmp_path / "01_demo.py"
    source.write_text(CHAPTER.replace("range(2)", "range(3)"), encoding="utf-8")
    with pytest.raises(SystemExit, match="code changed since the sweep"):
        ledger.chapter_entry(source, tmp_path, {0: [record(2)]}, swept=SWEPT)
    source.write_text(CHAPTER, encoding="utf-8")
    with pytest.raises(SystemExit, match="has no assert"):
        ledger.chapter_entry(source, tmp_path, {0: [record(3)]}, swept=SWEPT)


def test_a_sweep_in_the_reference_environment_is_refused(tmp_path):
    write_manifest(tmp_path, perturbed=False)
    with pytest.raises(SystemExit, match="reference environment"):
        ledger.sweep_manifest(tmp_path)
    (tmp_path / "sweep.json").unlink()
    with pytest.raises(SystemExit, match="no sweep.json"):
        ledger.sweep_manifest(tmp_path)


def test_changed_code_is_stale_a_new_message_only_needs_a_rebuild(tmp_path):
    source = tmp_path / "01_demo.py"
    source.write_text(CHAPTER, encoding="utf-8")
    entry = {
        "fingerprint": ledger.code_fingerprint(CHAPTER),
        "asserts": [
            {"check": item.check, "message": item.message, "section": item.section}
            for item in ledger.chapter_asserts(CHAPTER)
        ],
    }
    assert (
        ledger.stale_code(source, entry) is None
        and ledger.stale_texts(source, entry) is None
    )
    source.write_text(
        CHAPTER.replace('"x is large"', '"x exceeds one"'), encoding="utf-8"
    )
    assert ledger.stale_code(
        source, entry
    ) is None and "x exceeds one" in ledger.stale_texts(source, entry)
    assert ledger.refreshed(source, entry)["asserts"][0]["message"] == "x exceeds one"
    source.write_text(
        CHAPTER.replace("range(2)", "range(20)"), encoding="utf-8"
    )  # not an assert: still stale
    assert "code changed" in ledger.stale_code(source, entry)


def test_student_t_tail():
    assert (
        abs(ledger.t_cdf(0, 9) - 0.5) < 1e-9 and abs(ledger.t_cdf(-1, 1) - 0.25) < 1e-9
    )  # Cauchy
    assert abs(ledger.t_cdf(-1.96, 10_000) - 0.025) < 1e-3


def test_failure_chance_predicted_from_the_seeds():
    def runs(values, operator="<", bound=1.0):
        return [
            (seed, record(3, left=value, operator=operator, right=bound, margin=0.5))
            for seed, value in enumerate(values)
        ]

    # gaps 1.5, 1.6, 1.7 (raw: a side is negative): mean 1.6, SD 0.1, t with 2 degrees of freedom
    expected = ledger.t_cdf(-16 / math.sqrt(1 + 1 / 3), 2)
    assert ledger.failure_chance(runs([-0.5, -0.6, -0.7])) == float(f"{expected:.3g}")
    assert ledger.failure_chance(runs([0.5, 0.5, 0.5])) == "same"
    assert ledger.failure_chance(runs([0.5, 0.6])) is None  # two seeds: no estimate
    assert (
        ledger.failure_chance(runs([1.5, 1.6, 1.7], ">", bound=0.0)) is None
    )  # x > 0: structural
    # both sides positive: judged on the log of the ratio (3, 2 and 1 times ln 10 here)
    by_ratio = ledger.failure_chance(runs([1e-9, 1e-8, 1e-7], bound=1e-6))
    assert by_ratio == float(f"{ledger.t_cdf(-2 / math.sqrt(1 + 1 / 3), 2):.3g}")
    # a zero on the small side (a rate that was 0 on one seed) stays on the log scale, at half the smallest
    # positive value: gaps ln(8), ln(2), ln(4) for 0 (as 0.125), 0.5 and 0.25 below 1
    with_zero = ledger.failure_chance(runs([0.0, 0.5, 0.25]))
    gaps = [math.log(8), math.log(2), math.log(4)]
    mean, sd = sum(gaps) / 3, (sum((g - sum(gaps) / 3) ** 2 for g in gaps) / 2) ** 0.5
    assert with_zero == float(
        f"{ledger.t_cdf(-mean / (sd * math.sqrt(1 + 1 / 3)), 2):.3g}"
    )
    assert ledger.floor_safe_zeros([(2.0, ">", 0.0), (3.0, ">", 1.0)]) == [
        (2.0, ">", 0.5),
        (3.0, ">", 1.0),
    ]
    assert ledger.floor_safe_zeros([(0.0, ">", 1.0), (3.0, ">", 1.0)]) == [
        (0.0, ">", 1.0),
        (3.0, ">", 1.0),
    ]
    # abs(x) < b: Chebyshev, the mean of (|x| / b)^2
    assert ledger.failure_chance(
        runs([0.1, 0.2, 0.3], bound=1.0), "abs(x) < 1.0"
    ) == pytest.approx(0.14 / 3, rel=1e-3)


def test_the_sweep_writes_its_environment_and_commit(tmp_path):
    sweep.write_manifest(tmp_path, perturbed=True)
    manifest = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert (
        manifest["environment"] == "perturbed"
        and manifest["variables"]["TF_NUM_INTRAOP_THREADS"] == "1"
    )
    assert set(manifest) == {
        "environment",
        "variables",
        "commit",
        "uncommitted_changes",
        "started",
    }


def test_the_stored_ledger_describes_the_chapters_code_and_messages():
    """The page "How sure is each claim?" cannot go stale silently: any change to a chapter's code since the
    last sweep fails here until the chapter is swept again and the ledger rebuilt; a reworded message
    fails until the ledger is rebuilt (no sweep needed)."""
    stored = ledger.stored_ledger()["chapters"]
    chapters = sorted(ledger.CHAPTERS.glob("[0-9][0-9]_*.py"))
    again = (
        "sweep it again (make sweep CHAPTERS=... SWEEP_OUT=DIR) and rebuild the ledger"
        " (make ledger SWEEPS=DIR)"
    )
    assert sorted(stored) == [p.stem for p in chapters], (
        f"the ledger's chapters are not the book's: {again}"
    )
    for path in chapters:
        difference = ledger.stale_code(path, stored[path.stem])
        assert difference is None, f"{path.name}: {difference}; {again}"
        reworded = ledger.stale_texts(path, stored[path.stem])
        assert reworded is None, (
            f"{path.name}: {reworded}; rebuild the ledger with `make ledger SWEEPS=`"
        )
        assert not any(item["failed_seeds"] for item in stored[path.stem]["asserts"]), (
            f"{path.name}: the ledger records an assert that failed for some seed"
        )
