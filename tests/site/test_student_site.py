"""The student edition of the website (`make html EDITION=student`): every chapter page is there, with
the exercise stubs, and no line of any answer appears in its HTML."""

import html
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "classroom"))
import student  # noqa: E402

STUDENT_SITE = ROOT / "build" / "site-student" / "_build" / "html"
FULL_SITE = ROOT / "build" / "site" / "_build" / "html"


def page_lines(page):
    """The text lines of an HTML page, tags removed and entities decoded."""
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
    return {line.strip() for line in text.splitlines()}


@pytest.mark.parametrize("chapter", student.chapter_notebooks(), ids=lambda p: p.name)
def test_the_student_site_shows_stubs_and_no_answer(chapter):
    page = STUDENT_SITE / "chapters" / f"{chapter.stem}.html"
    assert page.exists(), "build the student site first: make html EDITION=student"
    notebook = nbformat.read(chapter, as_version=4)
    hidden = student.solution_lines(notebook) - {
        line.strip()
        for cell in student.student_notebook(notebook).cells
        for line in cell.source.splitlines()
    }
    lines = page_lines(page)
    assert hidden and not hidden & lines, (
        f"answers on the student site: {sorted(hidden & lines)[:3]}"
    )
    assert "NotImplementedError" in page.read_text(encoding="utf-8")
    full_lines = page_lines(FULL_SITE / "chapters" / f"{chapter.stem}.html")
    assert hidden & full_lines, (
        "the full site shows the answers (so the test can see them)"
    )
