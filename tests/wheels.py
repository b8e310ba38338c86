"""Can a reader on another platform install the pinned packages? Resolved here with pip's dry run for
each platform and Python the README names, binary wheels only (a reader without compilers gets no
further), without installing anything: `make check-wheels` (needs the package index, so it is not
part of `make test`).

    python -m tests.wheels [requirements.txt]
"""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINUX = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
]
MACOS = [
    "macosx_14_0_arm64",
    "macosx_13_0_arm64",
    "macosx_12_0_arm64",
    "macosx_11_0_arm64",
]
PLATFORMS = [
    ("Linux x86-64", LINUX),
    ("macOS Apple silicon", MACOS),
    ("Windows x64", ["win_amd64"]),
]
TARGETS = [
    (name, platforms, python)
    for python in ("3.11", "3.12", "3.13")
    for name, platforms in PLATFORMS
]


def resolve(requirements, platforms, python):
    """(True, "") when pip finds a wheel of every pinned package and dependency, else (False, pip's error)."""
    with tempfile.TemporaryDirectory() as target:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--only-binary=:all:",
            "--python-version",
            python,
            "--target",
            target,
            "-r",
            str(requirements),
        ]
        for platform in platforms:
            command += ["--platform", platform]
        result = subprocess.run(command, capture_output=True, text=True)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    return result.returncode == 0, "\n".join(errors)


def main(argv=None):
    arguments = sys.argv[1:] if argv is None else argv
    requirements = Path(arguments[0]) if arguments else ROOT / "requirements.txt"
    failed = 0
    for name, platforms, python in TARGETS:
        ok, errors = resolve(requirements, platforms, python)
        failed += not ok
        print(
            f"{name:20} Python {python}:"
            f" {'every package has a wheel' if ok else 'FAILS'}",
            flush=True,
        )
        if errors:
            print("   ", errors.replace("\n", "\n    "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
