"""The book's tests without make, on Windows, macOS and Linux alike:

    python -m tests            the unit tests, then every chapter under strict nbval
    python -m tests unit       the unit tests only (a minute or two)
    python -m tests chapters   every chapter under strict nbval (about as long as reading the book runs)

    --lax         chapters under nbval-lax: the asserts run, stored outputs are not compared (for
                  versions or platforms other than the ones the outputs were written with)
    --shard K/N   only the K-th of N groups of chapters, balanced by the measured times in
                  site/chapter_times.json (CI runs the groups in parallel jobs)

Options after `--` go to pytest, e.g. `python -m tests chapters -- -x` (stop at the first failure).
The environment is the Makefile's CPU_ENV (read from the Makefile, so both routes test the same way);
make test adds the perturbed numeric environment, the browser tests and the website on top.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.makefile_vars import makefile_env, makefile_variable
from utils import bootstrap

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_TIMES = ROOT / "site" / "chapter_times.json"


def chapter_notebooks():
    return [path.relative_to(ROOT).as_posix() for path in bootstrap.chapter_notebooks()]


def parse_shard(text):
    """'2/3' -> (2, 3), with a clear error for anything else."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard takes K/N (e.g. 1/2), not {text!r}") from None
    if not 1 <= index <= count:
        raise SystemExit(f"--shard {text}: K must be between 1 and N")
    return index, count


def shards(notebooks, count, times=None):
    """Split the notebooks into `count` groups of about equal measured time: longest first, each to the
    group with the least time so far (chapters without a measured time count as the longest one).
    """
    if times is None:
        times = (
            json.loads(CHAPTER_TIMES.read_text(encoding="utf-8"))
            if CHAPTER_TIMES.exists()
            else {}
        )
    longest = max(times.values(), default=1.0)
    groups = [[] for _ in range(count)]
    totals = [0.0] * count
    for notebook in sorted(notebooks, key=lambda n: (-times.get(n, longest), n)):
        emptiest = totals.index(min(totals))
        groups[emptiest].append(notebook)
        totals[emptiest] += times.get(notebook, longest)
    return [sorted(group) for group in groups]


def commands(what, extra=(), lax=False, shard=None):
    """The pytest command lines for `what` ('unit', 'chapters' or 'all')."""
    unit = [sys.executable, "-m", "pytest", "-q", "tests", *extra]
    notebooks = (
        ["chapters"]
        if shard is None
        else shards(chapter_notebooks(), shard[1])[shard[0] - 1]
    )
    chapters = [
        sys.executable,
        "-m",
        "pytest",
        *makefile_variable("NBVAL").split(),
        "--nbval-lax" if lax else "--nbval",
        "-q",
        *notebooks,
        *extra,
    ]
    return {"unit": [unit], "chapters": [chapters], "all": [unit, chapters]}[what]


def environment(base=None):
    env = dict(os.environ if base is None else base)
    env.update(makefile_env("CPU_ENV"), TF_NUM_INTRAOP_THREADS="1", MPLBACKEND="Agg")
    return env


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    words = argv[: argv.index("--")] if "--" in argv else argv
    lax = "--lax" in words
    shard = None
    if "--shard" in words:
        position = words.index("--shard")
        if position + 1 >= len(words):
            raise SystemExit("--shard needs K/N (e.g. 1/2)")
        shard = parse_shard(words[position + 1])
        del words[position : position + 2]
    words = [word for word in words if word != "--lax"]
    if len(words) > 1 or (words and words[0] not in ("unit", "chapters", "all")):
        raise SystemExit(__doc__)
    what = words[0] if words else "all"
    if (lax or shard) and what == "unit":
        raise SystemExit(
            "--lax and --shard apply to the chapters: python -m tests chapters --lax"
            " --shard 1/2"
        )
    for command in commands(what, extra, lax=lax, shard=shard):
        print("running:", " ".join(command[1:]), flush=True)
        code = subprocess.run(command, cwd=ROOT, env=environment()).returncode
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
