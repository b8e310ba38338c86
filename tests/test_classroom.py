"""classroom/student.py: stubs replace exactly the marked answers, and the static check finds the
ways a student edition can be unsound (a check that could pass on the stub, a cell that needs an answer);
classroom/assignments.py: each student's seed."""

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "classroom"))
import assignments  # noqa: E402  (nbformat and the standard library only)
import student  # noqa: E402


def notebook(*cells):
    """cells: (tags, source) pairs of code cells."""
    return nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)})
            for tags, source in cells
        ]
    )


ANSWER = "given = 2\n### BEGIN SOLUTION\nanswer = given * 21\n### END SOLUTION"
STUBBED_FUNCTION = (
    'def double(x):\n    """Twice x."""\n'
    "    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
)


def test_stub_replaces_each_marked_region_at_its_indentation():
    assert student.stub_source(
        ANSWER, "Exercise 1"
    ) == "given = 2\n" + student.STUB.format(label="Exercise 1")
    stubbed = student.stub_source(STUBBED_FUNCTION, "Exercise 2")
    assert stubbed.splitlines()[2] == "    " + student.STUB.format(label="Exercise 2")
    assert "2 * x" not in stubbed
    namespace = {}
    exec(stubbed, namespace)
    with pytest.raises(NotImplementedError, match="Exercise 2"):
        namespace["double"](1)


@pytest.mark.parametrize(
    "source",
    [
        "### BEGIN SOLUTION\nx = 1",
        "x = 1\n### END SOLUTION",
        "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
    ],
)
def test_unbalanced_markers_are_an_error(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        student.solution_regions(source)


def test_an_answer_must_be_followed_by_its_check():
    with pytest.raises(ValueError, match="check"):
        student.exercises(notebook((["solution"], ANSWER), ([], "print(answer)")))


def test_a_sound_edition_has_no_problems():
    sound = notebook(
        ([], "x = 1"),
        (["solution"], ANSWER),
        (["check"], "assert answer == 42"),
        (["solution"], STUBBED_FUNCTION),
        (["check"], "assert double(2) == 4"),
    )
    assert student.static_problems(sound) == []


def test_a_check_that_could_pass_on_the_stub_is_found():
    earlier_answer = notebook(
        ([], "answer = 42"), (["solution"], ANSWER), (["check"], "assert answer == 42")
    )
    assert any(
        "could pass on the stub" in p for p in student.static_problems(earlier_answer)
    )


def test_a_cell_that_needs_an_answer_is_found():
    needs_answer = notebook(
        (["solution"], ANSWER),
        (["check"], "assert answer == 42"),
        ([], "print(answer + 1)"),
    )
    assert any(
        "only the answer of Exercise 1 defines" in p
        for p in student.static_problems(needs_answer)
    )
    redefined = notebook(
        (["solution"], ANSWER),
        (["check"], "assert answer == 42"),
        ([], "answer = 0\nprint(answer)"),
    )
    assert student.static_problems(redefined) == []


def test_the_edition_clears_exercise_outputs_and_keeps_the_rest():
    original = notebook(
        ([], "x = 1"), (["solution"], ANSWER), (["check"], "print(answer)")
    )
    for cell in original.cells:
        cell.outputs = [nbformat.v4.new_output("stream", text="42\n")]
    edition = student.student_notebook(original)
    assert edition.cells[0].outputs == original.cells[0].outputs
    assert edition.cells[1].outputs == [] == edition.cells[2].outputs
    assert original.cells[1].source == ANSWER, "the original is left alone"
    assert student.solution_lines(original, minimum_length=5) == {"answer = given * 21"}


def test_each_student_gets_their_own_seed_from_the_id(tmp_path):
    seeds = assignments.write_seeds(tmp_path, _roster(tmp_path, "ada\ngrace\n\nlin\n"))
    assert list(seeds) == ["ada", "grace", "lin"] and len(set(seeds.values())) == 3
    assert all(0 <= seed < 10_000 for seed in seeds.values())
    assert seeds == {name: assignments.student_seed(name) for name in seeds}, (
        "recomputable from the id alone"
    )
    assert (tmp_path / "seeds.csv").read_text(encoding="utf-8").splitlines()[
        0
    ] == "student_id,BOOK_SEED"
    with pytest.raises(ValueError, match="twice"):
        assignments.write_seeds(tmp_path, _roster(tmp_path, "ada\nada\n"))
    with pytest.raises(ValueError, match="non-empty"):
        assignments.student_seed(" ada")


def _roster(folder, text):
    path = folder / "roster.txt"
    path.write_text(text, encoding="utf-8")
    return path
