"""tests/ledger.py, the claims ledger's builder: every assert of a chapter's current source, matched by
its full text with the sweep's records; a sweep of other asserts is refused."""

import json

import pytest

from tests import ledger

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
'''


def record(statement, passed=True, left=None, operator=None, right=None, margin=None):
    links = [] if operator is None else [{"operator": operator, "left": left, "right": right, "margin": margin,
                                          "passed": passed}]
    return {"line": 1, "source": statement.splitlines()[0], "statement": statement, "passed": passed,
            "margin": margin, "links": links}


def test_chapter_asserts_in_order_with_message_and_section():
    found = ledger.chapter_asserts(CHAPTER)
    assert [(statement, message, section) for _, statement, message, section in found] == [
        ('assert x > 1, "x is large"', "x is large", "1. First"),
        ('assert x * k < 10, f"small for {k}"', "small for …", "2. Second"),
        ("assert (x ==\n        3)", "", "2. Second")]


def test_worst_case_over_seeds_and_executions(tmp_path):
    source = tmp_path / "01_demo.py"
    source.write_text(CHAPTER, encoding="utf-8")
    seeds = {0: [record('assert x > 1, "x is large"', left=3.0, operator=">", right=1.0, margin=0.67),
                 record('assert x * k < 10, f"small for {k}"', left=0.0, operator="<", right=10.0, margin=1.0),
                 record('assert x * k < 10, f"small for {k}"', left=3.0, operator="<", right=10.0, margin=0.7)],
             1: [record('assert x > 1, "x is large"', passed=False, left=0.5, operator=">", right=1.0, margin=-0.5)]}
    entry = ledger.chapter_entry(source, tmp_path, seeds)
    first, second, third = entry["asserts"]
    assert first["failed_seeds"] == [1] and first["worst"]["seed"] == 1 and first["worst"]["margin"] == -0.5
    assert second["executions"] == 2 and second["worst"]["margin"] == 0.7
    assert third["executions"] == 0 and third["worst"] is None and entry["not_executed"] == 1
    json.dumps(entry)  # storable


def test_a_sweep_of_asserts_the_chapter_no_longer_has_is_refused(tmp_path):
    source = tmp_path / "01_demo.py"
    source.write_text(CHAPTER, encoding="utf-8")
    with pytest.raises(SystemExit, match="no longer has"):
        ledger.chapter_entry(source, tmp_path, {0: [record("assert x > 2")]})
    old = record('assert x > 1, "x is large"')
    del old["statement"]
    with pytest.raises(SystemExit, match="sweep again"):
        ledger.chapter_entry(source, tmp_path, {0: [old]})
