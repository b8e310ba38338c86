"""An nbgrader course made from the chapters (used by `make assignments`, in .venv-nbgrader).

Each chapter becomes an assignment named after it (e.g. `02_bptt`): the answer cells (tagged
`solution`, answers between nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` markers) become
nbgrader solution cells, the check cells (tagged `check`) become autograded test cells worth one point
each. nbgrader itself then writes the student version (`nbgrader generate_assignment`, into
`release/`), with the same stub as the student edition of `make student`.

The course folder also holds a kernel named `rnn-book` that runs the book's own .venv (TensorFlow
and all), so that nbgrader, which lives in its own venv, executes the chapters with the book's
packages when it autogrades. Autograding runs each notebook in the course folder; its first cell finds
`utils/` and `data/` in the folders above, so keep the course inside the book (build/course) or inside an
unpacked student bundle. The student bundle's notebooks carry the same nbgrader metadata, so a
student who worked in the bundle hands in a notebook this course grades.

A seed per student: with `--students ROSTER` (a text file, one student id per line), the course also
gets `seeds.csv`, each student's own BOOK_SEED, derived from the id (`student_seed`: the same on every
machine, so it can be recomputed). The teacher hands each student their seed; the student runs the
notebooks with it (`BOOK_SEED=4711 make lab`, or `%env BOOK_SEED=4711` before the setup cell), so the
numbers differ between students while every check must still hold. When `seeds.csv` exists, grading
runs each submission with its student's seed.

usage: python classroom/assignments.py COURSE_DIR [--students ROSTER] [CHAPTER.ipynb ...]
              (default: every chapter)
       python classroom/assignments.py --grade COURSE_DIR ASSIGNMENT
              (autograde COURSE_DIR/submitted/*/ASSIGNMENT and write COURSE_DIR/grades.csv)
"""

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "classroom"))
from student import ANSWER_TAG, CHECK_TAG, STUB, with_nbgrader_metadata  # noqa: E402

KERNEL = "rnn-book"
CONFIG = """\
# nbgrader configuration written by classroom/assignments.py.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "rnn-book"
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
c.Execute.kernel_name = {kernel!r}
c.Execute.timeout = 900  # seconds per cell: some cells train a model
"""


def assignment_notebook(chapter):
    """The chapter with nbgrader's metadata on each exercise's answer and check cell."""
    notebook = with_nbgrader_metadata(nbformat.read(chapter, as_version=4))
    for cell in notebook.cells:
        assert "nbgrader" in cell.metadata or not {ANSWER_TAG, CHECK_TAG} & set(
            cell.metadata.get("tags", [])
        )
    return notebook


def write_kernel(course, python=ROOT / ".venv" / "bin" / "python"):
    """A kernelspec `rnn-book` in COURSE/jupyter/kernels that runs the book's venv."""
    folder = course / "jupyter" / "kernels" / KERNEL
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (the RNN book's .venv)",
        "language": "python",
    }
    (folder / "kernel.json").write_text(
        json.dumps(spec, indent=1) + "\n", encoding="utf-8"
    )


def student_seed(student_id):
    """A student's BOOK_SEED: a whole number from 0 to 9,999 derived from the id alone."""
    if not student_id.strip() or student_id != student_id.strip():
        raise ValueError(
            "a student id must be non-empty without surrounding spaces, got"
            f" {student_id!r}"
        )
    return int(hashlib.sha256(student_id.encode("utf-8")).hexdigest(), 16) % 10_000


def write_seeds(course, roster):
    """COURSE/seeds.csv: each student id of the roster file (one per line) with its BOOK_SEED."""
    ids = [
        line.strip()
        for line in Path(roster).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{roster}: a student id appears twice")
    with open(Path(course) / "seeds.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student_id", "BOOK_SEED"])
        writer.writerows((student_id, student_seed(student_id)) for student_id in ids)
    return {student_id: student_seed(student_id) for student_id in ids}


def build_course(course, chapters, roster=None):
    """Write COURSE with one assignment per chapter and generate the release versions; return their names."""
    course = Path(course).resolve()
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    stub = STUB.format(label="Exercise")
    (course / "nbgrader_config.py").write_text(
        CONFIG.format(root=str(course), stub=stub, kernel=KERNEL), encoding="utf-8"
    )
    write_kernel(course)
    names = []
    for chapter in chapters:
        chapter = Path(chapter)
        (course / "source" / chapter.stem).mkdir(parents=True)
        nbformat.write(
            assignment_notebook(chapter),
            course / "source" / chapter.stem / chapter.name,
        )
        nbgrader(course, "generate_assignment", chapter.stem, "--force")
        names.append(chapter.stem)
    if roster is not None:
        write_seeds(course, roster)
    return names


def nbgrader(course, *arguments, extra_env=None):
    """Run the nbgrader command line of this venv in COURSE, with the course's kernel on JUPYTER_PATH
    (the kernel inherits this environment, BOOK_SEED included)."""
    bin_dir = Path(sys.executable).parent  # nbgrader runs `alembic` from PATH
    env = dict(
        os.environ,
        JUPYTER_PATH=str(Path(course) / "jupyter"),
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        **(extra_env or {}),
    )
    command = [str(bin_dir / "nbgrader"), *arguments]
    result = subprocess.run(
        command, cwd=course, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)}"
            f" failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def grade(course, assignment):
    """Autograde every submission of `assignment` and export the gradebook to COURSE/grades.csv. With
    COURSE/seeds.csv, each student's submission runs with that student's BOOK_SEED."""
    course = Path(course).resolve()
    if (course / "seeds.csv").exists():
        students = sorted(
            p.parent.name
            for p in (course / "submitted").glob(f"*/{assignment}")
            if p.is_dir()
        )
        for student_id in students:
            seed = student_seed(student_id)
            print(f"grading {student_id} with BOOK_SEED={seed}", flush=True)
            nbgrader(
                course,
                "autograde",
                assignment,
                "--student",
                student_id,
                "--force",
                extra_env={"BOOK_SEED": str(seed)},
            )
    else:
        nbgrader(course, "autograde", assignment, "--force")
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    return course / "grades.csv"


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--grade":
        print("grades:", grade(sys.argv[2], sys.argv[3]))
        raise SystemExit(0)
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__)
    arguments = sys.argv[2:]
    roster = None
    if "--students" in arguments:
        position = arguments.index("--students")
        if position + 1 >= len(arguments):
            raise SystemExit("--students needs a roster file: one student id per line")
        roster = arguments[position + 1]
        del arguments[position : position + 2]
    chapters = arguments or sorted(
        str(p) for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")
    )
    names = build_course(sys.argv[1], chapters, roster)
    print(
        f"nbgrader course in {sys.argv[1]}: {len(names)} assignments; student versions"
        f" in {sys.argv[1]}/release"
    )
    if roster is not None:
        print(
            f"each student's BOOK_SEED: {sys.argv[1]}/seeds.csv (grading runs each"
            " submission with it)"
        )
