"""The student edition: every chapter's exercises as answer cells with stubs and check cells that fail
until the answer is written; a self-contained bundle with no solution in any file, which runs.

The soundness of the edition is proved statically (classroom/student.py, `static_problems`), so the
chapters are not executed a second time; chapter 2 is run inside the unpacked bundle when nbgrader grades
the bundle's notebook (tests/editions/test_nbgrader.py)."""

import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "classroom"))
import student  # noqa: E402

CHAPTERS = student.chapter_notebooks()
BUNDLE = ROOT / "build" / "student"
ARCHIVE = BUNDLE.with_suffix(".zip")


def read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_every_exercise_is_an_answer_and_a_check_and_the_edition_is_sound(chapter):
    notebook = read(chapter)
    assert student.exercises(notebook), "a chapter without exercises"
    assert student.static_problems(notebook) == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_the_bundle_notebook_is_the_chapter_with_stubs(chapter):
    original, edition = read(chapter), read(BUNDLE / "chapters" / chapter.name)
    assert len(original.cells) == len(edition.cells)
    exercise_cells = {
        i for _, answer, check in student.exercises(original) for i in (answer, check)
    }
    for index, (before, after) in enumerate(
        zip(original.cells, edition.cells, strict=True)
    ):
        if index not in exercise_cells:
            assert (before.cell_type, before.source, before.get("outputs")) == (
                after.cell_type,
                after.source,
                after.get("outputs"),
            ), f"cell {index} changed"
        elif student.ANSWER_TAG in before.metadata.get("tags", []):
            assert (
                "raise NotImplementedError(" in after.source
                and student.BEGIN not in after.source
            )
            assert after.outputs == [] and after.metadata["nbgrader"]["solution"]
        else:
            assert after.source == before.source and after.outputs == [], (
                "a check keeps its code, not its output"
            )
            assert (
                after.metadata["nbgrader"]["grade"]
                and after.metadata["nbgrader"]["points"] == 1
            )


def file_lines(path):
    """The stripped lines of a file; of a notebook, the lines of its sources and text outputs."""
    if path.suffix != ".ipynb":
        return {
            line.strip()
            for line in path.read_text(errors="ignore", encoding="utf-8").splitlines()
        }
    lines = set()
    for cell in read(path).cells:
        texts = [cell.source] + [
            o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
            for o in cell.get("outputs", [])
        ]
        lines.update(line.strip() for text in texts for line in text.splitlines())
    return lines


def test_the_archive_holds_no_solution_anywhere(tmp_path):
    with zipfile.ZipFile(ARCHIVE) as archive:
        archive.extractall(tmp_path)
    unpacked = tmp_path / BUNDLE.name
    names = {
        p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()
    }
    assert {
        "README.md",
        "requirements.txt",
        "chapters/glossary.md",
        "utils/bootstrap.py",
    } <= names
    assert not any(
        name.endswith(".py") and name.startswith("chapters/") for name in names
    ), "no .py solutions"
    solutions = set().union(
        *(student.solution_lines(read(chapter)) for chapter in CHAPTERS)
    )
    shown = {
        line.strip()
        for chapter in CHAPTERS
        for cell in student.student_notebook(read(chapter)).cells
        for line in cell.source.splitlines()
    }
    solutions -= shown  # a line that also appears outside the answers is not a leak
    assert len(solutions) > 50
    leaks = [
        (name, line)
        for name in sorted(names)
        for line in solutions & file_lines(unpacked / name)
    ]
    assert not leaks, f"solution lines in the bundle: {leaks[:5]}"
