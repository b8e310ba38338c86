"""The README's route without make, run as a new reader would on Linux: a fresh copy of the book (no
.git, no .venv, as a zip unpacks), the README's commands verbatim in bash, and the first cells of every
chapter (the bootstrap cell and the setup cell, which imports everything the chapter uses) executed
by a kernel of that fresh venv, from chapters/ and from a folder two levels further down. Nothing of
the book is installed into site-packages: `import utils` must fail outside the book.

Slow (a venv and `pip install -r requirements.txt`, from pip's cache when make has run): `make test-plain`.
The PowerShell block is checked to be the same steps; it is not run (no Windows here).
"""

import os
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from tests.worktree import copy_working_tree

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"


def readme_block(language):
    section = (
        README.read_text(encoding="utf-8")
        .split("## Without make", 1)[1]
        .split("\n## ", 1)[0]
    )
    blocks = re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, (
        f"README's 'Without make' section needs one {language} block"
    )
    return blocks[0].strip().splitlines()


def normalised(line):
    """A PowerShell line as the bash line of the same step would read."""
    line = line.replace("\\", "/").replace(
        ".venv/Scripts/Activate.ps1", "source .venv/bin/activate"
    )
    return line.replace("py -m venv", "python3 -m venv")


def test_powershell_block_is_the_same_steps():
    assert [normalised(line) for line in readme_block("powershell")] == readme_block(
        "bash"
    )


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory):
    return copy_working_tree(tmp_path_factory.mktemp("unpacked") / "rnn-book-main")


@pytest.fixture(scope="module")
def readme_environment(fresh_copy):
    """Run the README's install lines (all before `jupyter lab`) in bash; return the venv's bin/."""
    lines = readme_block("bash")
    opening = next(i for i, line in enumerate(lines) if line.startswith("jupyter lab "))
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if ".venv" not in p
    )
    script = (
        "set -euo pipefail\n" + "\n".join(lines[:opening]) + "\ncommand -v python\n"
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=fresh_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    python = Path(result.stdout.strip().splitlines()[-1])
    assert python.is_relative_to(fresh_copy), (
        f"the README's venv is not the one in use: {python}"
    )
    return python.parent, env


def test_nothing_of_the_book_is_installed(readme_environment, tmp_path):
    bin_dir, env = readme_environment
    result = subprocess.run(
        [bin_dir / "python", "-c", "import utils"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "No module named 'utils'" in result.stderr
    path_files = [
        p.read_text(encoding="utf-8")
        for p in bin_dir.parent.glob("lib/python*/site-packages/*.pth")
    ]
    assert not any(str(fresh_copy) in text for text in path_files), (
        "a .pth points into the book"
    )


def test_the_readme_opens_jupyterlab_with_what_it_installed(
    readme_environment, fresh_copy
):
    bin_dir, env = readme_environment
    opening = next(
        line for line in readme_block("bash") if line.startswith("jupyter lab ")
    )
    assert (fresh_copy / opening.split()[-1]).is_file()
    result = subprocess.run(
        [bin_dir / "jupyter", "lab", "--version"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout.strip()[0].isdigit(), result.stderr


@pytest.mark.parametrize("folder", ["chapters", "chapters/notes/week 1"])
def test_first_cells_of_every_chapter_run_in_the_fresh_venv(
    readme_environment, fresh_copy, folder
):
    bin_dir, env = readme_environment
    heads = []
    for chapter in sorted((fresh_copy / "chapters").glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(chapter, as_version=4)
        notebook.cells = [c for c in notebook.cells if c.cell_type == "code"][:2]
        notebook.cells.append(
            nbformat.v4.new_code_cell(
                "import utils, pathlib\nprint('utils from', utils.__file__)"
            )
        )
        head = fresh_copy / folder / f"head_{chapter.name}"
        head.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, head)
        heads.append(head)
    kernel_env = dict(
        env, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg"
    )
    # nbconvert is started outside the book; each kernel runs in its notebook's folder, as Jupyter's do.
    result = subprocess.run(
        [
            bin_dir / "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--inplace",
            *map(str, heads),
        ],
        cwd=fresh_copy.parent,
        env=kernel_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    executed = [nbformat.read(head, 4) for head in heads]
    for head in heads:
        head.unlink()  # the copy keeps only the book's own notebooks for the next test
    assert result.returncode == 0, result.stderr[-3000:]
    for head, notebook in zip(heads, executed, strict=True):
        outputs = [
            "".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells
        ]
        assert outputs[0] == "", (
            f"{head.name}: inside the book the bootstrap cell prints nothing"
        )
        assert "BOOK_SEED=" in outputs[1], f"{head.name}: the setup cell did not run"
        assert (
            f"utils from {fresh_copy.resolve() / 'utils' / '__init__.py'}" in outputs[2]
        ), outputs[2]


def test_the_readme_test_command_collects_every_test(readme_environment, fresh_copy):
    bin_dir, env = readme_environment
    command = readme_block("bash")[-1]
    assert command == "python -m tests"
    result = subprocess.run(
        [bin_dir / "python", "-m", "tests", "--", "--collect-only"],
        cwd=fresh_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = [
        int(n)
        for n in re.findall(
            r"^(\d+) tests? collected", result.stdout, flags=re.MULTILINE
        )
    ]
    assert len(counts) == 2 and all(n > 10 for n in counts), result.stdout[-2000:]
