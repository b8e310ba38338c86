"""tests/ledger.py, the claims ledger's builder (asserts matched by their check, the k-th assert with a given
check with the k-th line the sweep recorded for it), and the stored ledger's freshness."""

import json
import math

import pytest

from tests import ledger, sweep

CHAPTER = '''# %% [markdown]
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
'''


def write_manifest(directory, perturbed):
    """A sweep.json as tests/sweep.py writes it, for a committed tree."""
    (directory / "sweep.json").write_text(json.dumps(
        {"environment": "perturbed" if perturbed else "reference", "variables": {"TF_NUM_INTRAOP_THREADS": "1"},
         "commit": "abc1234", "uncommitted_changes": False, "started": "2026-12-05 10:36 UTC"}), encoding="utf-8")


def record(statement, line, passed=True, left=None, operator=None, right=None, margin=None):
    links = [] if operator is None else [{"operator": operator, "left": left, "right": right, "margin": margin,
                                          "passed": passed}]
    return {"line": line, "source": statement.splitlines()[0], "statement": statement, "passed": passed,
            "margin": margin, "links": links}


def test_chapter_asserts_in_order_with_check_message_and_section():
    found = ledger.chapter_asserts(CHAPTER)
    assert [(item.check, item.message, item.section) for item in found] == [
        ("x > 1", "x is large", "1. First"),
        ("x * k < 10", "small for …", "2. Second"),
        ("x == 3", "", "2. Second"),
        ("x > 1", "", "2. Second")]
    assert ledger.check_of("assert (x ==\n        3), 'm'") == "x == 3"


def test_worst_case_over_seeds_and_executions_and_repeated_checks(tmp_path):
    write_manifest(tmp_path, perturbed=True)
    source = tmp_path / "01_demo.py"
    source.write_text(CHAPTER, encoding="utf-8")
    # The sweep ran an older text (messages, line numbers moved): matching is by check and order.
    seeds = {0: [record('assert x > 1, "old"', 3, left=3.0, operator=">", right=1.0, margin=0.67),
                 record('assert x * k < 10', 7, left=0.0, operator="<", right=10.0, margin=1.0),
                 record('assert x * k < 10', 7, left=3.0, operator="<", right=10.0, margin=0.7),
                 record("assert x > 1", 12, left=3.0, operator=">", right=1.0, margin=0.2)],
             1: [record('assert x > 1, "old"', 3, passed=False, left=0.5, operator=">", right=1.0, margin=-0.5)]}
    entry = ledger.chapter_entry(source, tmp_path, seeds)
    first, second, third, fourth = entry["asserts"]
    assert first["failed_seeds"] == [1] and first["worst"]["seed"] == 1 and first["worst"]["margin"] == -0.5
    assert first["margin_by_seed"] == {"0": 0.67, "1": -0.5} and first["message"] == "x is large"
    assert second["executions"] == 2 and second["worst"]["margin"] == 0.7 and second["margin_by_seed"] == {"0": 0.7}
    assert third["executions"] == 0 and third["worst"] is None and entry["not_executed"] == 1
    assert fourth["worst"]["margin"] == 0.2 and fourth["failed_seeds"] == []
    json.dumps(entry)  # storable


def test_a_sweep_of_checks_the_chapter_no_longer_has_is_refused(tmp_path):
    write_manifest(tmp_path, perturbed=True)
    source = tmp_path / "01_demo.py"
    source.write_text(CHAPTER, encoding="utf-8")
    with pytest.raises(SystemExit, match="no longer has"):
        ledger.chapter_entry(source, tmp_path, {0: [record("assert x > 2", 3)]})
    three_lines = [record("assert x > 1", line) for line in (3, 12, 14)]
    with pytest.raises(SystemExit, match="no longer has"):
        ledger.chapter_entry(source, tmp_path, {0: three_lines})
    old = record('assert x > 1, "x is large"', 3)
    del old["statement"]
    with pytest.raises(SystemExit, match="sweep again"):
        ledger.chapter_entry(source, tmp_path, {0: [old]})


def test_a_sweep_in_the_reference_environment_is_refused(tmp_path):
    write_manifest(tmp_path, perturbed=False)
    with pytest.raises(SystemExit, match="reference environment"):
        ledger.sweep_manifest(tmp_path)
    (tmp_path / "sweep.json").unlink()
    with pytest.raises(SystemExit, match="no sweep.json"):
        ledger.sweep_manifest(tmp_path)


def test_a_new_check_is_stale_a_new_message_only_needs_a_rebuild(tmp_path):
    source = tmp_path / "01_demo.py"
    source.write_text(CHAPTER, encoding="utf-8")
    entry = {"asserts": [{"check": item.check, "message": item.message, "section": item.section}
                         for item in ledger.chapter_asserts(CHAPTER)]}
    assert ledger.stale_checks(source, entry) is None and ledger.stale_texts(source, entry) is None
    source.write_text(CHAPTER.replace('"x is large"', '"x exceeds one"'), encoding="utf-8")
    assert ledger.stale_checks(source, entry) is None and "x exceeds one" in ledger.stale_texts(source, entry)
    assert ledger.refreshed(source, entry)["asserts"][0]["message"] == "x exceeds one"
    source.write_text(CHAPTER.replace('x > 1, "x is large"', 'x > 2, "x is large"'), encoding="utf-8")
    assert "does not" in ledger.stale_checks(source, entry)
    source.write_text(CHAPTER.replace('assert x > 1, "x is large"\n', ""), encoding="utf-8")
    assert "number" in ledger.stale_checks(source, entry)


def test_the_stored_ledger_lists_exactly_the_chapters_asserts():
    """The page "How sure is each claim?" cannot go stale silently: an assert whose check was added, removed or
    changed since the last sweep fails here until the chapter is swept again and the ledger rebuilt; a
    reworded message fails until the ledger is rebuilt (no sweep needed)."""
    stored = ledger.stored_ledger()["chapters"]
    chapters = sorted(ledger.CHAPTERS.glob("[0-9][0-9]_*.py"))
    again = "sweep it again (make sweep CHAPTERS=... SWEEP_OUT=DIR) and rebuild the ledger (make ledger SWEEPS=DIR)"
    assert sorted(stored) == [p.stem for p in chapters], f"the ledger's chapters are not the book's: {again}"
    for path in chapters:
        difference = ledger.stale_checks(path, stored[path.stem])
        assert difference is None, f"{path.name}: {difference}; {again}"
        reworded = ledger.stale_texts(path, stored[path.stem])
        assert reworded is None, f"{path.name}: {reworded}; rebuild the ledger with `make ledger SWEEPS=`"
        assert not any(item["failed_seeds"] for item in stored[path.stem]["asserts"]), \
            f"{path.name}: the ledger records an assert that failed for some seed"


def test_seed_spread_in_standard_deviations_per_comparison():
    def runs(values, operator="<", bound=1.0):
        return [(seed, record("assert v < 1", 3, left=value, operator=operator, right=bound, margin=0.5))
                for seed, value in enumerate(values)]
    assert ledger.seed_spread(runs([-0.5, -0.6, -0.7])) == 16.0     # gaps 1.5, 1.6, 1.7: mean 1.6, SD 0.1
    assert ledger.seed_spread(runs([0.5, 0.5, 0.5])) == "same"
    assert ledger.seed_spread(runs([0.5, 0.6])) is None              # two seeds: no spread
    # both sides positive: the log of their ratio (3, 2 and 1 times ln 10 here: mean 2, SD 1 in ln 10)
    by_ratio = ledger.seed_spread(runs([1e-9, 1e-8, 1e-7], bound=1e-6))
    assert by_ratio == round(2 * math.log(10) / math.log(10), 2) == 2.0
    assert ledger.seed_spread(runs([1.5, 1.6, 1.7], ">", bound=0.0)) is None   # x > 0: structural


def test_the_sweep_writes_its_environment_and_commit(tmp_path):
    sweep.write_manifest(tmp_path, perturbed=True)
    manifest = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert manifest["environment"] == "perturbed" and manifest["variables"]["TF_NUM_INTRAOP_THREADS"] == "1"
    assert set(manifest) == {"environment", "variables", "commit", "uncommitted_changes", "started"}


def test_an_abs_check_is_judged_by_chebyshev():
    runs = [(seed, record("assert abs(x) < 0.3", 3, left=value, operator="<", right=0.3, margin=0.5))
            for seed, value in enumerate([0.1, 0.1, 0.1, 0.1])]
    assert ledger.seed_spread(runs, "abs(x) < 0.3") == 3.0          # 0.3 / RMS 0.1: P(fail) <= 1/9
    assert ledger.seed_spread(runs, "x < 0.3") == "same"            # as a plain comparison: no spread at all
