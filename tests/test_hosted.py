"""A chapter opened on Colab from a fork on GitHub, simulated here: a fresh folder holding only the
notebook, `google.colab` stubbed, and a local git repository standing in for GitHub. The bootstrap cell
must clone the book beside the notebook, install nothing that the platform has, and leave the chapter's
own setup cell working with verified data; run again (a restarted kernel), it must not fetch twice.
"""

import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from tests.worktree import copy_working_tree
from utils import bootstrap

ROOT = bootstrap.ROOT


def stand_in_for_github(folder):
    """A git repository with the book's files as they are now (tracked and new, not ignored)."""
    copy_working_tree(folder)
    git = [
        "git",
        "-c",
        "user.name=fork",
        "-c",
        "user.email=fork@example.org",
        "-c",
        "init.defaultBranch=main",
    ]
    for command in (
        ["init", "--quiet"],
        ["add", "--all"],
        ["commit", "--quiet", "-m", "the fork"],
    ):
        subprocess.run(git + command, cwd=folder, check=True)
    return folder.resolve().as_uri()


CHECK = """\
import pathlib, google.colab, utils, utils.data  # google.colab: the stand-in, as on Colab
assert pathlib.Path(utils.__file__).resolve().is_relative_to(pathlib.Path.cwd().resolve() / "rnn-book"), utils.__file__
print("helpers from", pathlib.Path(utils.__file__).parent.relative_to(pathlib.Path.cwd()))
print("weather days:", len(utils.data.load_seattle_weather()["date"]))  # checksum verified on load
"""


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """(content folder with one notebook, environment of a Colab kernel)."""
    github = stand_in_for_github(tmp_path_factory.mktemp("github-fork"))
    stubs = tmp_path_factory.mktemp("colab-python")
    # google/ stays a namespace package (protobuf is there)
    (stubs / "google" / "colab").mkdir(parents=True)
    (stubs / "google" / "colab" / "__init__.py").write_text(
        '"""Stand-in for Colab\'s module."""\n', encoding="utf-8"
    )
    content = tmp_path_factory.mktemp("content")
    chapter = bootstrap.chapter_notebooks()[0]
    notebook = nbformat.read(chapter, as_version=4)
    # the bootstrap cell and the setup cell
    setup = [c for c in notebook.cells if c.cell_type == "code"][:2]
    notebook.cells = setup + [nbformat.v4.new_code_cell(CHECK)]
    nbformat.write(notebook, content / chapter.name)
    bootstrap.write_repository(content / chapter.name, github, pair=False)
    return content / chapter.name, {
        "PYTHONPATH": str(stubs),
        "COLAB_RELEASE_TAG": "stand-in",
    }


def execute(notebook_path, env, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook_path.parent)}},
    ).execute()
    return ["".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells]


def test_a_lone_notebook_fetches_the_book_and_runs(colab, monkeypatch):
    notebook_path, env = colab
    assert [p.name for p in notebook_path.parent.iterdir()] == [notebook_path.name]
    first, setup, check = execute(notebook_path, env, monkeypatch)
    assert "fetching the book from file://" in first
    # this Python, like Colab's, has every runtime package
    assert "nothing to install" in first
    assert (notebook_path.parent / "rnn-book" / "data" / "README.md").is_file()
    assert "seed" in setup.lower()
    assert "helpers from rnn-book/utils" in check and "weather days:" in check


def test_a_restarted_kernel_does_not_fetch_again(colab, monkeypatch):
    notebook_path, env = colab
    first, _, check = execute(notebook_path, env, monkeypatch)
    assert "fetching" not in first and "helpers from rnn-book/utils" in check
