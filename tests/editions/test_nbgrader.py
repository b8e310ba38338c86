"""The chapters as nbgrader assignments, graded by the real nbgrader (in .venv-nbgrader).

Two courses, so that the gradings run side by side (`make test-student` runs this folder on two workers):
- chapter 1's instructor version, handed in by two students of a roster, each graded with their own
  BOOK_SEED, scores full marks for both;
- chapter 2's notebook of the student bundle, handed in unchanged, scores zero without crashing the
  grader. Its course sits inside a fresh unpacked copy of the bundle, so this grading is also the run of a chapter
  in the bundle: every cell but the exercises runs there, each answer raises its NotImplementedError and
  each check fails. nbgrader's own release version is the bundle's notebook, line for line.
"""

import csv
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NBGRADER_PYTHON = ROOT / ".venv-nbgrader" / "bin" / "python"
sys.path.insert(0, str(ROOT / "classroom"))
import student  # noqa: E402

CHAPTER = student.chapter_notebooks()[1]
ASSIGNMENT = CHAPTER.stem
# chapter 1, graded twice for the seeds per student
SHORTEST = student.chapter_notebooks()[0]
ARCHIVE = ROOT / "build" / "student.zip"

if not NBGRADER_PYTHON.exists() and os.environ.get("CI") == "true":
    pytest.fail(
        "nbgrader's venv is missing on CI: make test installs it", pytrace=False
    )
pytestmark = pytest.mark.skipif(
    not NBGRADER_PYTHON.exists(), reason="nbgrader's venv is missing: make assignments"
)


def read(path):
    return nbformat.read(path, as_version=4)


def assignments(*arguments):
    command = [
        str(NBGRADER_PYTHON),
        str(ROOT / "classroom" / "assignments.py"),
        *map(str, arguments),
    ]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=600,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
    )


def grade_one(course, student_id, notebook_path=None):
    """Build a course with chapter 2 in `course`, hand in `notebook_path` (default: the instructor's
    version in the course's source/) as `student_id`, autograde it; return (score, max score).
    """
    assignments(course, CHAPTER)
    submission = course / "submitted" / student_id / ASSIGNMENT
    submission.mkdir(parents=True)
    shutil.copy(
        notebook_path or course / "source" / ASSIGNMENT / CHAPTER.name,
        submission / CHAPTER.name,
    )
    assignments("--grade", course, ASSIGNMENT)
    with open(course / "grades.csv", encoding="utf-8") as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    return float(rows[student_id]["score"]), float(rows[student_id]["max_score"])


def test_two_students_graded_with_their_own_seeds_get_full_marks(tmp_path):
    """The instructor's version handed in by two students of a roster: each submission runs with that
    student's BOOK_SEED (other numbers, the setup cell says which seed) and every check still passes.
    """
    # inside the book, so that the notebook finds utils/ and data/
    course = ROOT / "build" / "test-course"
    shutil.rmtree(course, ignore_errors=True)
    roster = tmp_path / "roster.txt"
    roster.write_text("ada\ngrace\n", encoding="utf-8")
    try:
        assignments(course, "--students", roster, SHORTEST)
        with open(course / "seeds.csv", encoding="utf-8") as file:
            seeds = {
                row["student_id"]: int(row["BOOK_SEED"]) for row in csv.DictReader(file)
            }
        assert (
            set(seeds) == {"ada", "grace"} and len(set(seeds.values()) | {42}) == 3
        ), seeds
        for student_id in seeds:
            submission = course / "submitted" / student_id / SHORTEST.stem
            submission.mkdir(parents=True)
            shutil.copy(
                course / "source" / SHORTEST.stem / SHORTEST.name,
                submission / SHORTEST.name,
            )
        assignments("--grade", course, SHORTEST.stem)
        with open(course / "grades.csv", encoding="utf-8") as file:
            rows = {row["student_id"]: row for row in csv.DictReader(file)}
        checks = len(student.exercises(read(SHORTEST)))
        for student_id, seed in seeds.items():
            assert (
                float(rows[student_id]["score"]),
                float(rows[student_id]["max_score"]),
            ) == (checks, checks)
            graded = read(
                course / "autograded" / student_id / SHORTEST.stem / SHORTEST.name
            )
            printed = "".join(
                output.get("text", "")
                for cell in graded.cells
                if cell.cell_type == "code"
                for output in cell.get("outputs", [])
            )
            assert re.search(rf"BOOK_SEED={seed}\b", printed), (
                f"{student_id} was not graded with BOOK_SEED={seed}"
            )
    finally:
        shutil.rmtree(course, ignore_errors=True)


def errors(cell):
    return [
        output for output in cell.get("outputs", []) if output.output_type == "error"
    ]


def test_the_bundle_notebook_handed_in_scores_zero_and_runs_in_the_bundle(tmp_path):
    with zipfile.ZipFile(ARCHIVE) as archive:
        archive.extractall(tmp_path)
    bundle = tmp_path / ARCHIVE.stem
    course = bundle / "course"
    handed_in = bundle / "chapters" / CHAPTER.name
    exercises = student.exercises(read(CHAPTER))
    assert grade_one(course, "blank", handed_in) == (0, len(exercises))

    # graded, not crashed
    graded = read(course / "autograded" / "blank" / ASSIGNMENT / CHAPTER.name)
    exercise_cells = {i for _, answer, check in exercises for i in (answer, check)}
    for index, cell in enumerate(graded.cells):
        if index not in exercise_cells:
            assert not errors(cell), (
                f"cell {index} failed in the bundle: {errors(cell)[:1]}"
            )
    # a stub inside a function raises when the check calls it
    for label, answer, check in exercises:
        first = (errors(graded.cells[answer]) or errors(graded.cells[check]))[0]
        assert first.ename == "NotImplementedError" and label in first.evalue, (
            label,
            first.ename,
        )
        assert errors(graded.cells[check]), (
            f"{label}: the check passed without an answer"
        )

    released = read(course / "release" / ASSIGNMENT / CHAPTER.name)
    bundle_notebook = read(handed_in)
    assert len(released.cells) == len(bundle_notebook.cells)
    labels = {answer: label for label, answer, _ in exercises}
    for index, (ours, theirs) in enumerate(
        zip(bundle_notebook.cells, released.cells, strict=True)
    ):
        expected = ours.source
        if index in labels:
            expected = expected.replace(
                student.STUB.format(label=labels[index]),
                student.STUB.format(label="Exercise"),
            )
        assert theirs.source == expected, (
            f"cell {index}: nbgrader's release differs from the bundle"
        )
        assert theirs.metadata.get("nbgrader", {}).get("grade_id") == ours.metadata.get(
            "nbgrader", {}
        ).get("grade_id")
