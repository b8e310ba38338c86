"""Every chapter is a jupytext pair in sync, with stored outputs and no errors (read-only checks)."""

import json
import re
from pathlib import Path

import jupytext
import pytest

CHAPTERS_DIR = Path(__file__).resolve().parent.parent / "chapters"
SOURCES = sorted(CHAPTERS_DIR.glob("[0-9][0-9]_*.py"))
NOTEBOOKS = sorted(CHAPTERS_DIR.glob("*.ipynb"))


def test_there_are_chapters():
    assert SOURCES, "no chapters/NN_topic.py found"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_source_has_notebook(source):
    assert source.with_suffix(".ipynb").exists(), (
        f"{source.name} has no .ipynb: run `make outputs`"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_matches_its_source(notebook):
    source = notebook.with_suffix(".py")
    assert source.exists(), f"{notebook.name} has no .py source"
    rendered = jupytext.writes(jupytext.read(notebook), fmt="py:percent")
    assert rendered == source.read_text(encoding="utf-8"), (
        f"{notebook.name} is out of sync with {source.name}: run `make outputs`"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stores_clean_outputs(notebook):
    cells = [
        c
        for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "code"
    ]
    assert all(c["execution_count"] is not None for c in cells if c["source"]), (
        "unexecuted cells"
    )
    errors = [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, "stored outputs contain errors"
    texts = [o.get("text", "") for c in cells for o in c["outputs"]]
    texts = ["".join(t) if isinstance(t, list) else t for t in texts]
    assert not any("\x1b[" in t or "\b" in t for t in texts), (
        "progress bars or ANSI codes in stored outputs"
    )
    assert any("image/png" in o.get("data", {}) for c in cells for o in c["outputs"]), (
        "no figure"
    )


# What strict nbval may compare: only what is the same on every machine (integers, shapes, parameter
# counts, dataset sizes, exact arithmetic, booleans of tolerance checks). A cell that trains, evaluates
# or times something shows machine-dependent numbers: it must carry the `nbval-ignore-output` tag, and
# its claim lives in an assert. (The strict run in a perturbed environment catches the rest.)
TRAINS_OR_TIMES = re.compile(
    r"\.fit\(|\.evaluate\(|perf_counter|median_seconds|\.history\b|EpochLogger\("
)
# what utils.book.EpochLogger prints, from any helper
TRAINING_LOG = re.compile(r"epoch\s+\d+\s+loss")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_compared_cells_neither_train_nor_time(notebook):
    offending = []
    for index, cell in enumerate(
        json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    ):
        if cell["cell_type"] != "code" or not cell["outputs"]:
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        texts = [
            o
            for o in cell["outputs"]
            if o["output_type"] in ("stream", "execute_result")
        ]
        source = "".join(cell["source"])
        logged = any(
            TRAINING_LOG.search("".join(o.get("text", ""))) for o in cell["outputs"]
        )
        if (
            texts
            and "nbval-ignore-output" not in tags
            and (TRAINS_OR_TIMES.search(source) or logged)
        ):
            offending.append(f"cell {index}: {source.splitlines()[0][:70]}")
    assert not offending, (
        "tag these cells nbval-ignore-output (their outputs differ between machines):\n"
        + "\n".join(offending)
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_ignored_outputs_use_the_cell_tag(source):
    assert "NBVAL_IGNORE_OUTPUT" not in source.read_text(encoding="utf-8"), (
        'use the cell tag instead of the comment: # %% tags=["nbval-ignore-output"]'
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_headings_are_in_markdown_cells(notebook):
    """A section heading written as a comment in a code cell is lost from the notebook's outline."""
    cells = [
        c
        for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "code"
    ]
    sources = [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
    ]
    stray = [
        s.splitlines()[0] for s in sources if re.search(r"^# #{1,4} ", s, flags=re.M)
    ]
    assert not stray, (
        "code cells holding a markdown heading (add '# %% [markdown]' before it):"
        f" {stray}"
    )
