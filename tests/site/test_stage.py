"""site/stage.py leaves each chapter's bootstrap cell (plumbing that finds utils/) off the website, and
only that cell: the built page starts with the title and promise and still shows the setup cell.
"""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "site"))
from stage import chapter_notebooks, without_bootstrap_cell  # noqa: E402

SITE = ROOT / "build" / "site" / "_build" / "html"


@pytest.mark.parametrize("chapter", chapter_notebooks(), ids=lambda p: p.stem)
def test_only_the_bootstrap_cell_is_removed(chapter):
    notebook = without_bootstrap_cell(nbformat.read(chapter, as_version=4))
    removed = [
        cell
        for cell in notebook.cells
        if "remove-cell" in cell.metadata.get("tags", [])
    ]
    assert len(removed) == 1 and "BOOK_REPOSITORY" in removed[0].source
    assert "bootstrap" in removed[0].metadata["tags"]


@pytest.mark.parametrize("chapter", chapter_notebooks(), ids=lambda p: p.stem)
def test_the_built_page_has_no_bootstrap_code(chapter):
    page = SITE / "chapters" / f"{chapter.stem}.html"
    if not page.exists():
        pytest.skip(f"{page} does not exist: run `make html` first")
    text = page.read_text(encoding="utf-8")
    assert "BOOK_REPOSITORY" not in text and "setup_book" in text
