"""pytest plugin for the chapter run (loaded with `-p tests.nbval_plugin`).

- stderr is never compared: TensorFlow writes machine-dependent warnings there.
- After the run, the time of each notebook (kernel start plus every cell) is printed, with what its
  setup cell printed after the versions (device, TF32, GPU memory growth, seed: `make test-gpu`
  shows there that a chapter ran on the GPU); the times of a strict run of the book's chapters
  (chapters/*.ipynb) go to build/chapter_times.json, which `make readme` records; lax runs (other
  seeds, the GPU, the student edition) do not touch it.
"""

import json
from collections import defaultdict
from pathlib import Path

import pytest
from nbval.plugin import IPyNbFile

TIMES_FILE = Path("build") / "chapter_times.json"
_seconds_per_notebook = defaultdict(float)
_setup_line_per_notebook = {}


def setup_details(outputs):
    """What utils.book.setup_book printed after the versions ('CPU (...) | TF32 off | BOOK_SEED=42'), or None."""
    for output in outputs or []:
        text = output.get("text", "")
        text = "".join(text) if isinstance(text, list) else text
        for line in text.splitlines():
            if line.startswith("TensorFlow ") and " | Keras " in line:
                return " | ".join(line.split(" | ")[2:])
    return None


def pytest_collectstart(collector):
    if isinstance(collector, IPyNbFile):
        collector.skip_compare = (*collector.skip_compare, "stderr")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    cell = getattr(item, "cell", None)
    if call.when == "call" and cell is not None and "setup_book(" in cell.source:
        details = setup_details(getattr(item, "test_outputs", None))
        if details:
            # reaches the controller under xdist
            outcome.get_result().user_properties.append(("setup", details))


def pytest_runtest_logreport(report):
    notebook = report.nodeid.split("::")[0]
    if notebook.endswith(".ipynb"):
        _seconds_per_notebook[notebook] += report.duration
        for key, value in report.user_properties:
            if key == "setup":
                _setup_line_per_notebook[notebook] = value


def pytest_terminal_summary(terminalreporter):
    if not _seconds_per_notebook:
        return
    terminalreporter.section("time per notebook")
    for notebook, seconds in sorted(_seconds_per_notebook.items()):
        setup = _setup_line_per_notebook.get(notebook)
        terminalreporter.write_line(
            f"{seconds:7.1f} s  {notebook}" + (f"  ({setup})" if setup else "")
        )
    if terminalreporter.config.getoption("nbval_lax"):
        return  # other seeds or the student edition: not the reference times of the README
    rounded = {
        notebook: round(seconds, 1)
        for notebook, seconds in sorted(_seconds_per_notebook.items())
    }
    TIMES_FILE.parent.mkdir(exist_ok=True)
    TIMES_FILE.write_text(json.dumps(rounded, indent=2) + "\n", encoding="utf-8")
