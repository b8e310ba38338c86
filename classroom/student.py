"""The student edition of the book, and the static proof that it is sound (used by `make student`).

Every exercise of a chapter is two code cells. The **answer cell** (tagged `solution`) holds the
answer between nbgrader's markers, `### BEGIN SOLUTION` and `### END SOLUTION`, with any code the
student is given around them; the **check cell** after it (tagged `check`) asserts what a right
answer must satisfy. The student edition keeps every cell: it replaces each marked region by a stub
that raises `NotImplementedError` with a hint (what nbgrader's generate_assignment does too) and clears
the outputs of both exercise cells, so that no answer, printed or stored, survives. The exercise cells
carry nbgrader's metadata (answer = solution cell, check = autograded test worth one point), so that a
notebook of the student edition, handed in, is graded by the course of `make assignments`.

`static_problems` proves, without running anything, what would otherwise take a second run of every
chapter: that each check uses a name only its answer defines (so it fails until the student writes
the answer, and cannot pass on a value left by an earlier cell), and that no other cell uses a name
only an answer defines (so the rest of the chapter runs unchanged in the student edition).

usage: python classroom/student.py OUT_DIR      (writes the bundle there and OUT_DIR.zip)
"""

import ast
import copy
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ANSWER_TAG, CHECK_TAG = "solution", "check"
STUB = (
    'raise NotImplementedError("{label}: write your answer here, then run the check'
    ' cell below")'
)


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def solution_regions(source):
    """[(begin line, end line, indent)] of the marked regions of a cell, 1-based lines of the markers."""
    regions, begin = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() == BEGIN:
            if begin is not None:
                raise ValueError(f"line {number}: {BEGIN} inside another solution")
            begin, indent = number, line[: len(line) - len(line.lstrip())]
        elif line.strip() == END:
            if begin is None:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            regions.append((begin, number, indent))
            begin = None
    if begin is not None:
        raise ValueError(f"line {begin}: {BEGIN} is never closed")
    return regions


def stub_source(source, label):
    """The cell with every marked region replaced by a stub that raises NotImplementedError."""
    lines = source.splitlines()
    for begin, end, indent in reversed(solution_regions(source)):
        lines[begin - 1 : end] = [indent + STUB.format(label=label)]
    return "\n".join(lines)


def exercises(notebook):
    """[(label, answer cell index, check cell index)]; each answer cell is followed by its check cell."""
    found, number = [], 0
    cells = notebook.cells
    for index, cell in enumerate(cells):
        if cell.cell_type == "code" and ANSWER_TAG in tags(cell):
            number += 1
            following = next(
                (
                    i
                    for i in range(index + 1, len(cells))
                    if cells[i].cell_type == "code"
                ),
                None,
            )
            if following is None or CHECK_TAG not in tags(cells[following]):
                raise ValueError(
                    f"exercise {number}: the answer cell is not followed by a cell"
                    f" tagged {CHECK_TAG!r}"
                )
            if not solution_regions(cell.source):
                raise ValueError(
                    f"exercise {number}: the answer cell has no {BEGIN} ... {END}"
                    " region"
                )
            found.append((f"Exercise {number}", index, following))
    return found


def nbgrader_metadata(kind, number):
    """nbgrader's cell metadata for exercise `number`'s answer (a solution cell) or check (a test, one point)."""
    metadata = {
        "schema_version": 3,
        "grade_id": f"exercise-{number}-{kind}",
        "task": False,
    }
    if kind == "answer":
        return metadata | {"solution": True, "grade": False, "locked": False}
    return metadata | {"solution": False, "grade": True, "locked": True, "points": 1}


def with_nbgrader_metadata(notebook):
    """`notebook` (changed in place) with nbgrader's metadata on each exercise's answer and check cell."""
    for number, (_, answer, check) in enumerate(exercises(notebook), start=1):
        notebook.cells[answer].metadata["nbgrader"] = nbgrader_metadata(
            "answer", number
        )
        notebook.cells[check].metadata["nbgrader"] = nbgrader_metadata("check", number)
    return notebook


def student_notebook(notebook):
    """A copy of `notebook` with every answer stubbed, the outputs of the exercise cells cleared and
    nbgrader's metadata on the exercise cells."""
    student = with_nbgrader_metadata(copy.deepcopy(notebook))
    for label, answer, check in exercises(student):
        student.cells[answer].source = stub_source(student.cells[answer].source, label)
        for index in (answer, check):
            student.cells[index].outputs, student.cells[index].execution_count = (
                [],
                None,
            )
    return student


def _stored_names(nodes):
    names = set()
    for node in nodes:
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and isinstance(
                child.ctx, ast.Store | ast.Del
            ):
                names.add(child.id)
            elif isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
            ):
                names.add(child.name)
            elif isinstance(child, ast.alias):
                names.add((child.asname or child.name).split(".")[0])
    return names


def _loaded_names(tree):
    """Names the code reads before (or without) assigning them itself."""
    first_load, first_store = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            first = first_load if isinstance(node.ctx, ast.Load) else first_store
            first[node.id] = min(first.get(node.id, node.lineno), node.lineno)
    return {
        name for name, line in first_load.items() if line <= first_store.get(name, line)
    }


def _split_answer(source):
    """(names stored inside the marked regions, names stored outside them, functions whose body is marked)."""
    tree = ast.parse(source)
    regions = [(begin, end) for begin, end, _ in solution_regions(source)]
    inside, outside, stubbed = set(), set(), set()

    def visit(statements):
        for statement in statements:
            if any(begin < statement.lineno < end for begin, end in regions):
                inside.update(_stored_names([statement]))
            elif isinstance(statement, ast.FunctionDef | ast.ClassDef):
                outside.add(statement.name)
                body_lines = [
                    s.lineno
                    for s in ast.walk(statement)
                    if isinstance(s, ast.stmt) and s is not statement
                ]
                if any(
                    begin < line < end for line in body_lines for begin, end in regions
                ):
                    stubbed.add(statement.name)
                visit(statement.body)
            else:
                outside.update(_stored_names([statement]))

    visit(tree.body)
    return inside - outside, outside, stubbed


def _cell_code(source):
    """Cell source as Python: IPython magics and shell lines commented out."""
    return "\n".join(
        "# " + line if line.lstrip().startswith(("%", "!")) else line
        for line in source.splitlines()
    )


def static_problems(notebook):
    """Why the student edition of `notebook` would be unsound: an empty list when it is sound."""
    problems, kept_names = [], set()
    answer_only = {}  # name -> the exercise whose answer alone defines it
    exercise_of = {
        answer: (label, check) for label, answer, check in exercises(notebook)
    }
    check_of = {check: label for label, check in exercise_of.values()}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        source = _cell_code(cell.source)
        if index in exercise_of:
            label, _ = exercise_of[index]
            inside, outside, stubbed = _split_answer(source)
            loaded = _loaded_names(ast.parse(source))
            for name in loaded & set(answer_only):
                problems.append(
                    f"{label}: its answer cell uses {name!r}, which only the answer of "
                    f"{answer_only[name]} defines"
                )
            kept_names |= outside
            for name in inside - kept_names:
                answer_only[name] = label
            pending = (label, inside - kept_names, stubbed)
            continue
        loaded = _loaded_names(ast.parse(source))
        if index in check_of:
            label, only_answer, stubbed = pending
            if not loaded & (only_answer | stubbed):
                problems.append(
                    f"{label}: the check uses no name that only its answer defines, so"
                    " it could pass on the stub; make it use the answer's result"
                )
            for name in (loaded & set(answer_only)) - only_answer:
                problems.append(
                    f"{label}: the check uses {name!r}, which only the answer of "
                    f"{answer_only[name]} defines"
                )
        else:
            for name in sorted(loaded & set(answer_only)):
                problems.append(
                    f"cell {index}: uses {name!r}, which only the answer of"
                    f" {answer_only[name]} defines"
                )
        stored = _stored_names(ast.parse(source).body)
        kept_names |= stored
        for name in stored:
            answer_only.pop(name, None)
    return problems


def chapter_notebooks():
    return sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


BUNDLE_README = """\
# Recurrent Neural Networks: a runnable textbook (student edition)

Each chapter is a notebook in `chapters/`. Read it top to bottom and run every cell. The exercises
at the end of each chapter come in pairs of cells: an **answer cell**, which raises
`NotImplementedError` where your answer goes, and a **check cell** after it, which fails until your
answer is right. Nothing else needs to change.

Python 3.11, 3.12 or 3.13; from this folder:

    python -m venv .venv
    source .venv/bin/activate          # Windows PowerShell: .venv\\Scripts\\Activate.ps1
    python -m pip install -r requirements.txt
    jupyter lab chapters

The notebooks find `utils/` and `data/` in this folder by themselves; nothing is downloaded while
they run. `chapters/glossary.md` explains the key terms.
"""


def write_bundle(out_dir):
    """Write the self-contained student bundle to `out_dir` and `out_dir`.zip; return the zip's path."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "chapters").mkdir(parents=True)
    for path in chapter_notebooks():
        notebook = nbformat.read(path, as_version=4)
        problems = static_problems(notebook)
        if problems:
            raise SystemExit(
                f"{path.name}: the student edition would be unsound:\n  "
                + "\n  ".join(problems)
            )
        nbformat.write(student_notebook(notebook), out_dir / "chapters" / path.name)
    shutil.copy(ROOT / "chapters" / "glossary.md", out_dir / "chapters" / "glossary.md")
    shutil.copytree(
        ROOT / "utils", out_dir / "utils", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(
        ROOT / "data", out_dir / "data", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "requirements.txt", out_dir / "requirements.txt")
    (out_dir / "README.md").write_text(BUNDLE_README, encoding="utf-8")
    archive = out_dir.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(out_dir.rglob("*")):
            if path.is_file():
                bundle.write(path, Path(out_dir.name) / path.relative_to(out_dir))
    return archive


def solution_lines(notebook, minimum_length=12):
    """The distinctive lines of every answer (inside the markers), for tests that look for leaks."""
    lines = set()
    for _, answer, _ in exercises(notebook):
        source = notebook.cells[answer].source.splitlines()
        for begin, end, _ in solution_regions(notebook.cells[answer].source):
            lines.update(
                line.strip()
                for line in source[begin : end - 1]
                if len(line.strip()) >= minimum_length
            )
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    archive = write_bundle(sys.argv[1])
    print(f"student edition: {sys.argv[1]} and {archive}")
