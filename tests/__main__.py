"""The book's tests without make, on Windows, macOS and Linux alike:

    python -m tests            the unit tests, then every chapter under strict nbval
    python -m tests unit       the unit tests only (a minute or two)
    python -m tests chapters   every chapter under strict nbval (about as long as reading the book runs)

Options after `--` go to pytest, e.g. `python -m tests chapters -- -x` (stop at the first failure).
The environment is the Makefile's CPU_ENV (read from the Makefile, so both routes test the same way);
make test adds the perturbed numeric environment, the browser tests and the website on top.
"""

import os
import subprocess
import sys
from pathlib import Path

from tests.makefile_vars import makefile_env, makefile_variable

ROOT = Path(__file__).resolve().parent.parent


def commands(what, extra=()):
    """The pytest command lines for `what` ('unit', 'chapters' or 'all')."""
    unit = [sys.executable, "-m", "pytest", "-q", "tests", *extra]
    chapters = [sys.executable, "-m", "pytest", *makefile_variable("NBVAL").split(), "--nbval", "-q",
                "chapters", *extra]
    return {"unit": [unit], "chapters": [chapters], "all": [unit, chapters]}[what]


def environment(base=None):
    env = dict(os.environ if base is None else base)
    env.update(makefile_env("CPU_ENV"), TF_NUM_INTRAOP_THREADS="1", MPLBACKEND="Agg")
    return env


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    words = argv[:argv.index("--")] if "--" in argv else argv
    if len(words) > 1 or (words and words[0] not in ("unit", "chapters", "all")):
        raise SystemExit(__doc__)
    for command in commands(words[0] if words else "all", extra):
        print("running:", " ".join(command[1:]), flush=True)
        code = subprocess.run(command, cwd=ROOT, env=environment()).returncode
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
