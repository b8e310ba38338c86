"""The reading path of `make lab`, through the real JupyterLab server and its contents API.

A reader clicks a chapter's .py (the default viewer is the Jupytext notebook) or its .ipynb; both
must open with the stored outputs, figures included, and saving from JupyterLab must write both
files of the pair. Run by `make test-lab` in .venv.
"""

import json
import shutil

import jupytext
import pytest

from tests.lab.lab_server import ROOT, running_lab

CHAPTERS = ROOT / "chapters"
SOURCES = sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))


def output_counts(cells):
    """(cells with outputs, outputs that are PNG figures)."""
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    with_outputs = sum(1 for cell in code if cell.get("outputs"))
    images = sum(
        1
        for cell in code
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    )
    return with_outputs, images


@pytest.fixture(scope="module")
def lab():
    with running_lab() as server:
        yield server


def test_the_served_folder_shows_the_chapters_and_the_glossary(lab):
    names = {item["name"] for item in lab.api("contents")["content"]}
    assert {source.name for source in SOURCES} <= names
    assert "glossary.md" in names


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
@pytest.mark.parametrize("suffix", [".py", ".ipynb"])
def test_chapter_opens_with_its_stored_outputs(lab, source, suffix):
    stored = json.loads(source.with_suffix(".ipynb").read_text(encoding="utf-8"))[
        "cells"
    ]
    opened = lab.notebook(source.with_suffix(suffix).name)["cells"]
    assert len(opened) == len(stored)
    assert output_counts(opened) == output_counts(stored), (
        f"{source.stem}{suffix} opens without its outputs"
    )
    assert output_counts(stored)[1] > 0
    bootstrap = [
        cell for cell in opened if "bootstrap" in cell["metadata"].get("tags", [])
    ]
    assert (
        len(bootstrap) == 1
        and bootstrap[0]["metadata"].get("jupyter", {}).get("source_hidden") is True
    ), f"{source.stem}{suffix}: the bootstrap cell does not open collapsed"


def test_saving_in_jupyterlab_writes_both_files_of_the_pair(tmp_path):
    chapter = SOURCES[0]
    for path in (chapter, chapter.with_suffix(".ipynb"), CHAPTERS / "jupytext.toml"):
        shutil.copy(path, tmp_path / path.name)
    with running_lab(root_dir=tmp_path) as lab:
        notebook = lab.notebook(chapter.name)
        notebook["cells"].append(
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": "A note the reader added.",
            }
        )
        model = {"type": "notebook", "format": "json", "content": notebook}
        lab.api(f"contents/{chapter.name}", method="PUT", body=model)
    saved_source = (tmp_path / chapter.name).read_text(encoding="utf-8")
    saved_notebook = jupytext.read(tmp_path / chapter.with_suffix(".ipynb").name)
    assert "A note the reader added." in saved_source
    assert saved_notebook.cells[-1].source == "A note the reader added."
    stored = json.loads(chapter.with_suffix(".ipynb").read_text(encoding="utf-8"))[
        "cells"
    ]
    assert output_counts(saved_notebook.cells) == output_counts(stored), (
        "saving lost the outputs"
    )
    assert jupytext.writes(saved_notebook, fmt="py:percent") == saved_source, (
        "the saved pair is out of sync"
    )
