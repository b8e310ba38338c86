"""Version drift, tested here: every chapter under nbval-lax (asserts only) in venvs with other
versions of the packages the chapters import than the pins of requirements.txt.

    python -m tests.versions [previous|newest ...]     (make test-versions)

- `previous`: the TensorFlow minor release before the pinned one and the oldest Keras 3 the book
  supports (what a hosted notebook platform may lag behind with), the rest pinned. Keras 3.12 and 3.13
  (a year before the pins) were tried and fail: on TensorFlow their `keras.ops.associative_scan`
  recurses without end inside a traced model (chapter 11; fixed in 3.14), and Keras 3.12 refuses a
  None inside a layer's arguments (chapter 6's fixed-context decoder);
- `newest`: the newest releases on PyPI of every package the chapters import (TensorFlow, Keras,
  NumPy, Matplotlib, Babel, sacrebleu, sentencepiece).

Each set gets its own venv (.venv-versions/NAME, kept between runs), the chapters run two at a time
in the Makefile's test environment, and the summary gives, per set, the versions installed and each
chapter's result; build/versions/NAME.xml is pytest's report. Exit status 1 if a chapter failed.
"""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from tests.makefile_vars import makefile_env, makefile_variable
from utils.bootstrap import MINIMUM_VERSIONS, RUNTIME_PACKAGES, pinned_versions

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venv-versions"
REPORTS = ROOT / "build" / "versions"
# the book's minimum
SETS = {
    "previous": {
        name: f"{name}=={version}.0" for name, version in MINIMUM_VERSIONS.items()
    },
    "newest": {distribution: distribution for _, distribution in RUNTIME_PACKAGES},
}


def requirements(name, requirements_file=ROOT / "requirements.txt"):
    """requirements.txt's lines with the set's packages replaced (an unpinned name: the newest)."""
    replaced = SETS[name]
    lines = []
    for line in requirements_file.read_text(encoding="utf-8").splitlines():
        package = line.split("#")[0].split("==")[0].strip().lower()
        lines.append(replaced.get(package, line))
    return "\n".join(lines) + "\n"


def venv_python(venv):
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def prepare(name):
    """The set's venv, created and installed when its requirements changed; returns its python."""
    venv = VENVS / name
    wanted = requirements(name)
    stamp = venv / "requirements.txt"
    if not stamp.exists() or stamp.read_text(encoding="utf-8") != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        python = venv_python(venv)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
            check=True,
        )
        (venv / "wanted.txt").write_text(wanted, encoding="utf-8")
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "-r",
                str(venv / "wanted.txt"),
            ],
            check=True,
        )
        stamp.write_text(wanted, encoding="utf-8")
    return venv_python(venv)


def installed_versions(python):
    code = (
        "import importlib.metadata as m, json; print(json.dumps({d: m.version(d) for d"
        " in %r}))" % [distribution for _, distribution in RUNTIME_PACKAGES]
    )
    return json.loads(
        subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )


def chapter_results(report):
    """{notebook: 'passed' | 'failed: first failing cell'} from pytest's junit XML."""
    results = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        # e.g. 06_translation.ipynb
        notebook = case.get("classname", "").removeprefix("chapters.")
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is not None and results.get(notebook, "passed") == "passed":
            # colours of the traceback
            text = re.sub(r"(#x1B|\x1b)\[[0-9;]*m", "", failure.text or "")
            error = [line for line in text.splitlines() if "Error" in line]
            results[notebook] = (
                f"failed at {case.get('name')}:"
                f" {error[-1].strip()[:160] if error else ''}"
            )
        else:
            results.setdefault(notebook, "passed")
    return results


def run(name):
    python = prepare(name)
    REPORTS.mkdir(parents=True, exist_ok=True)
    report = REPORTS / f"{name}.xml"
    env = {
        **os.environ,
        **makefile_env("CPU_ENV"),
        **makefile_env("PERTURBED_ENV"),
        "MPLBACKEND": "Agg",
    }
    command = [
        str(python),
        "-m",
        "pytest",
        *makefile_variable("NBVAL").split(),
        "--nbval-lax",
        "-n",
        "2",
        "--dist",
        "loadscope",
        "-q",
        f"--junitxml={report}",
        "chapters",
    ]
    print(f"== {name}: {installed_versions(python)}", flush=True)
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    results = chapter_results(report) if report.exists() else {}
    for notebook, result in sorted(results.items()):
        print(f"   {notebook:40} {result}")
    return code == 0 and bool(results)


def main(argv=None):
    names = (sys.argv[1:] if argv is None else argv) or list(SETS)
    unknown = [name for name in names if name not in SETS]
    if unknown:
        raise SystemExit(f"unknown version set(s) {unknown}: choose from {list(SETS)}")
    pins = pinned_versions()
    print(
        "pinned:",
        {distribution: pins[distribution] for _, distribution in RUNTIME_PACKAGES},
        flush=True,
    )
    passed = [run(name) for name in names]
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
