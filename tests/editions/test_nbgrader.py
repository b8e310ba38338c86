"""The chapters as nbgrader assignments, graded by the real nbgrader (in .venv-nbgrader): chapter 2's
instructor version scores full marks, its released student version scores zero without crashing the
grader, and the released version holds the stubs and none of the answers."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NBGRADER_PYTHON = ROOT / ".venv-nbgrader" / "bin" / "python"
sys.path.insert(0, str(ROOT / "classroom"))
import student  # noqa: E402

CHAPTER = student.chapter_notebooks()[1]
ASSIGNMENT = CHAPTER.stem

if not NBGRADER_PYTHON.exists() and os.environ.get("CI") == "true":
    pytest.fail("nbgrader's venv is missing on CI: make test installs it", pytrace=False)
pytestmark = pytest.mark.skipif(not NBGRADER_PYTHON.exists(), reason="nbgrader's venv is missing: make assignments")


@pytest.fixture(scope="module")
def course():
    """A course with chapter 2, inside the book (build/) so that the notebooks find utils/ and data/."""
    folder = ROOT / "build" / "test-course"
    subprocess.run([str(NBGRADER_PYTHON), str(ROOT / "classroom" / "assignments.py"), str(folder), str(CHAPTER)],
                   check=True, capture_output=True, timeout=300)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_release_has_stubs_and_no_answer(course):
    released = nbformat.read(course / "release" / ASSIGNMENT / CHAPTER.name, as_version=4)
    released_lines = {line.strip() for cell in released.cells for line in cell.source.splitlines()}
    hidden = student.solution_lines(nbformat.read(CHAPTER, as_version=4)) - set(
        line.strip() for cell in student.student_notebook(nbformat.read(CHAPTER, as_version=4)).cells
        for line in cell.source.splitlines())
    assert hidden and not hidden & released_lines
    assert sum(cell.source.count("raise NotImplementedError(") for cell in released.cells) == \
           len(student.exercises(nbformat.read(CHAPTER, as_version=4)))


def test_nbgrader_gives_the_instructor_full_marks_and_the_blank_release_zero(course):
    for student_id, version in (("instructor", course / "source"), ("blank", course / "release")):
        submission = course / "submitted" / student_id / ASSIGNMENT
        submission.mkdir(parents=True)
        shutil.copy(version / ASSIGNMENT / CHAPTER.name, submission / CHAPTER.name)
    grade = [str(NBGRADER_PYTHON), str(ROOT / "classroom" / "assignments.py"), "--grade", str(course), ASSIGNMENT]
    subprocess.run(grade, check=True, capture_output=True, timeout=900, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    with open(course / "grades.csv") as file:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(file)}
    checks = len(student.exercises(nbformat.read(CHAPTER, as_version=4)))
    assert scores["instructor"] == (checks, checks), scores
    assert scores["blank"] == (0, checks), scores
    assert (course / "autograded" / "blank" / ASSIGNMENT / CHAPTER.name).exists(), "graded, not crashed"
