"""The student edition (`make student`, build/student) keeps every cell of each chapter but the
solutions, in order. Run by `make test-student`, which then executes every student notebook."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
STUDENT_DIR = ROOT / "build" / "student"


def is_solution(cell):
    return "solution" in cell.metadata.get("tags", [])


def test_the_chapters_have_solutions_to_remove():
    assert sum(is_solution(c) for path in CHAPTERS for c in nbformat.read(path, as_version=4).cells) > 0


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_student_notebook_is_the_chapter_without_solutions(chapter):
    student_path = STUDENT_DIR / chapter.name
    assert student_path.exists(), f"{student_path} is missing: run `make student`"
    original = nbformat.read(chapter, as_version=4).cells
    student = nbformat.read(student_path, as_version=4).cells
    solutions = [cell.source for cell in original if is_solution(cell)]
    assert not any(is_solution(cell) for cell in student), "a cell tagged solution survived"
    assert not any(cell.source in solutions for cell in student), "the code of a solution survived"
    kept = [(cell.cell_type, cell.source) for cell in original if not is_solution(cell)]
    assert [(cell.cell_type, cell.source) for cell in student] == kept, "cells other than solutions changed"
