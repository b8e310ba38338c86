"""A copy of the book as it is in the working tree (tracked and new, not ignored), for tests that need
a fresh copy: the plain-pip route (tests/plain) and the stand-in for GitHub (tests/test_hosted.py).
"""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_working_tree(destination):
    """Copy every file git tracks or would track (ignored ones left out) into `destination`; return it."""
    destination = Path(destination)
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        # a file deleted but not yet committed is listed too
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination
