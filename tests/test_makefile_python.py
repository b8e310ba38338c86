"""The Makefile picks the newest supported Python (3.13, 3.12, 3.11) on PATH and refuses any other.

Stand-in interpreters are tiny shell scripts that answer the Makefile's version check with an exit
status: 0 plays a supported Python, 1 an unsupported one (say macOS's 3.9).
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(
    MAKE is None or os.name == "nt", reason="needs make and a POSIX shell"
)


def fake_pythons(directory, **supported):
    """Write one stand-in interpreter per name (python3_12=True -> python3.12 that passes the check)."""
    for name, ok in supported.items():
        path = directory / name.replace("_", ".")
        path.write_text(f"#!/bin/sh\nexit {0 if ok else 1}\n", encoding="utf-8")
        path.chmod(0o755)
    return directory


def which_python(path_dir, *arguments):
    # PATH holds only the stand-ins: the machine's own Pythons must not be found.
    return subprocess.run(
        [MAKE, "-s", "-C", str(ROOT), "which-python", *arguments],
        capture_output=True,
        text=True,
        env={"PATH": str(path_dir), "HOME": str(path_dir)},
    )


def test_the_newest_supported_python_wins(tmp_path):
    fake_pythons(
        tmp_path, python3_13=False, python3_12=True, python3_11=True, python3=True
    )
    result = which_python(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "python3.12")


def test_plain_python3_is_used_when_it_is_supported(tmp_path):
    fake_pythons(tmp_path, python3=True)
    assert which_python(tmp_path).stdout.strip() == str(tmp_path / "python3")


def test_no_supported_python_stops_with_the_versions_named(tmp_path):
    fake_pythons(tmp_path, python3=False, python3_9=True)
    result = which_python(tmp_path)
    assert result.returncode != 0
    assert "3.11, 3.12 or 3.13" in result.stderr and "PYTHON=" in result.stderr


def test_an_explicit_unsupported_python_is_refused(tmp_path):
    fake_pythons(tmp_path, python3_12=True, old=False)
    result = which_python(tmp_path, f"PYTHON={tmp_path / 'old'}")
    assert result.returncode != 0 and "3.11, 3.12 or 3.13" in result.stderr
