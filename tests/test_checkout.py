"""A checkout with Windows line-end settings keeps data/ byte-exact and the sources with LF ends.

Git for Windows defaults to core.autocrlf=true, which converts LF to CRLF on checkout unless
.gitattributes says otherwise. The test clones the committed repository with that setting.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def crlf_clone(tmp_path_factory):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the book")
    clone = tmp_path_factory.mktemp("crlf") / "book"
    subprocess.run(
        [
            "git",
            "clone",
            "--quiet",
            "--no-hardlinks",
            "-c",
            "core.autocrlf=true",
            str(ROOT),
            str(clone),
        ],
        check=True,
    )
    return clone


def test_the_clone_really_uses_autocrlf(crlf_clone):
    setting = subprocess.run(
        ["git", "-C", str(crlf_clone), "config", "core.autocrlf"],
        capture_output=True,
        text=True,
    )
    assert setting.stdout.strip() == "true"


def test_every_data_file_matches_its_checksum(crlf_clone):
    lines = (
        (crlf_clone / "data" / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    )
    assert lines, "SHA256SUMS is empty"
    for line in lines:
        digest, name = line.split()
        actual = hashlib.sha256((crlf_clone / "data" / name).read_bytes()).hexdigest()
        assert actual == digest, f"data/{name} changed on a core.autocrlf=true checkout"


def test_sources_keep_lf_line_ends(crlf_clone):
    for pattern in (
        "chapters/*.py",
        "chapters/*.ipynb",
        "utils/*.py",
        "Makefile",
        ".ci/run",
    ):
        for path in crlf_clone.glob(pattern):
            assert b"\r\n" not in path.read_bytes(), (
                f"{path.relative_to(crlf_clone)} was checked out with CRLF"
            )
