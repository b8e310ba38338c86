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

usage: python classroom/assignments.py COURSE_DIR [CHAPTER.ipynb ...]   (default: every chapter)
       python classroom/assignments.py --grade COURSE_DIR ASSIGNMENT
              (autograde COURSE_DIR/submitted/*/ASSIGNMENT and write COURSE_DIR/grades.csv)
"""

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
CONFIG = '''\
# nbgrader configuration written by classroom/assignments.py.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "rnn-book"
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
c.Execute.kernel_name = {kernel!r}
c.Execute.timeout = 900  # seconds per cell: some cells train a model
'''


def assignment_notebook(chapter):
    """The chapter with nbgrader's metadata on each exercise's answer and check cell."""
    notebook = with_nbgrader_metadata(nbformat.read(chapter, as_version=4))
    for cell in notebook.cells:
        assert "nbgrader" in cell.metadata or not {ANSWER_TAG, CHECK_TAG} & set(cell.metadata.get("tags", []))
    return notebook


def write_kernel(course, python=ROOT / ".venv" / "bin" / "python"):
    """A kernelspec `rnn-book` in COURSE/jupyter/kernels that runs the book's venv."""
    folder = course / "jupyter" / "kernels" / KERNEL
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (the RNN book's .venv)", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")


def build_course(course, chapters):
    """Write COURSE with one assignment per chapter and generate the release versions; return their names."""
    course = Path(course).resolve()
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    stub = STUB.format(label="Exercise")
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course), stub=stub, kernel=KERNEL),
                                               encoding="utf-8")
    write_kernel(course)
    names = []
    for chapter in chapters:
        chapter = Path(chapter)
        (course / "source" / chapter.stem).mkdir(parents=True)
        nbformat.write(assignment_notebook(chapter), course / "source" / chapter.stem / chapter.name)
        nbgrader(course, "generate_assignment", chapter.stem, "--force")
        names.append(chapter.stem)
    return names


def nbgrader(course, *arguments):
    """Run the nbgrader command line of this venv in COURSE, with the course's kernel on JUPYTER_PATH."""
    bin_dir = Path(sys.executable).parent  # nbgrader runs `alembic` from PATH
    env = dict(os.environ, JUPYTER_PATH=str(Path(course) / "jupyter"),
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    command = [str(bin_dir / "nbgrader"), *arguments]
    result = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def grade(course, assignment):
    """Autograde every submission of `assignment` and export the gradebook to COURSE/grades.csv."""
    course = Path(course).resolve()
    nbgrader(course, "autograde", assignment, "--force")
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    return course / "grades.csv"


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--grade":
        print("grades:", grade(sys.argv[2], sys.argv[3]))
        raise SystemExit(0)
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__)
    chapters = sys.argv[2:] or sorted(str(p) for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    names = build_course(sys.argv[1], chapters)
    print(f"nbgrader course in {sys.argv[1]}: {len(names)} assignments; student versions in {sys.argv[1]}/release")
