"""pytest plugin for the chapter run (loaded with `-p tests.nbval_plugin`).

- stderr is never compared: TensorFlow writes machine-dependent warnings there.
- After the run, the time of each notebook (kernel start plus every cell) is printed; the times
  of a strict run of the book's chapters (chapters/*.ipynb) go to build/chapter_times.json, which
  `make readme` records; lax runs (other seeds, the student edition) do not touch it.
"""

import json
from collections import defaultdict
from pathlib import Path

from nbval.plugin import IPyNbFile

TIMES_FILE = Path("build") / "chapter_times.json"
_seconds_per_notebook = defaultdict(float)


def pytest_collectstart(collector):
    if isinstance(collector, IPyNbFile):
        collector.skip_compare = (*collector.skip_compare, "stderr")


def pytest_runtest_logreport(report):
    notebook = report.nodeid.split("::")[0]
    if notebook.endswith(".ipynb"):
        _seconds_per_notebook[notebook] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _seconds_per_notebook:
        return
    terminalreporter.section("time per notebook")
    for notebook, seconds in sorted(_seconds_per_notebook.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {notebook}")
    if terminalreporter.config.getoption("nbval_lax"):
        return  # other seeds or the student edition: not the reference times of the README
    rounded = {notebook: round(seconds, 1) for notebook, seconds in sorted(_seconds_per_notebook.items())}
    TIMES_FILE.parent.mkdir(exist_ok=True)
    TIMES_FILE.write_text(json.dumps(rounded, indent=2) + "\n")
