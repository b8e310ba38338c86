"""The seed sweep: every chapter for several seeds in a perturbed numeric environment, with margins.

    python -m tests.sweep --seeds 0-9 --jobs 2 --out build/sweep chapters/0*.py
    python -m tests.sweep --summary-only --out build/sweep

Each (chapter, seed) runs `tests.assert_margins` in its own process, in the environment of
`make test` plus PERTURBED_ENV (another oneDNN instruction-set cap and another thread count than
the stored outputs were made with). The summary lists, per chapter, every assert that failed for
some seed and the tightest ones that did not, with their worst relative margin and its seed.
OUT/sweep.json records the environment and the commit the sweep ran (tests/ledger.py reads it).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.makefile_vars import makefile_env

ROOT = Path(__file__).resolve().parent.parent
CPU_ENV = {**makefile_env("CPU_ENV"), "MPLBACKEND": "Agg"}
PERTURBED_ENV = makefile_env("PERTURBED_ENV")
OUTPUTS_ENV = makefile_env("OUTPUTS_ENV")


def parse_seeds(text):
    """'0-9' or '0,3,7' or '0-2,42' -> a sorted list of ints."""
    seeds = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            first, last = (int(p) for p in part.split("-"))
            if last < first:
                raise ValueError(f"empty seed range {part!r}")
            seeds.update(range(first, last + 1))
        elif part:
            seeds.add(int(part))
    if not seeds:
        raise ValueError(f"no seeds in {text!r}")
    return sorted(seeds)


def _git(*arguments):
    result = subprocess.run(
        ["git", *arguments], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def write_manifest(out_dir, perturbed):
    """OUT/sweep.json: which numeric environment and which commit (with uncommitted changes or not) ran."""
    manifest = {
        "environment": "perturbed" if perturbed else "reference",
        "variables": {**CPU_ENV, **(PERTURBED_ENV if perturbed else OUTPUTS_ENV)},
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(
            _git("status", "--porcelain", "--", "chapters", "utils", "data")
        ),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (out_dir / "sweep.json").write_text(
        json.dumps(manifest, indent=1) + "\n", encoding="utf-8"
    )


def run_one(chapter, seed, out_dir, perturbed):
    log = out_dir / f"{chapter.stem}_seed{seed}.jsonl"
    env = {
        **os.environ,
        **CPU_ENV,
        **(PERTURBED_ENV if perturbed else OUTPUTS_ENV),
        "BOOK_SEED": str(seed),
    }
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "tests.assert_margins", str(chapter), str(log)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    (out_dir / f"{chapter.stem}_seed{seed}.out").write_text(
        result.stdout + "\n--- stderr ---\n" + result.stderr, encoding="utf-8"
    )
    status = "ok" if result.returncode == 0 else f"exit {result.returncode}"
    print(
        f"{chapter.stem} seed {seed}: {status} ({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    return result.returncode


def summarise(out_dir, tightest=4):
    records = defaultdict(list)  # (chapter, line, source) -> [(seed, record)]
    seeds_run, crashed = defaultdict(set), []
    for log in sorted(out_dir.glob("*_seed*.jsonl")):
        chapter, seed = log.stem.rsplit("_seed", 1)
        lines = [
            json.loads(line)
            for line in log.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        seeds_run[chapter].add(int(seed))
        if not lines or "seconds" not in lines[-1]:
            crashed.append(f"{chapter} seed {seed}")
        for record in lines:
            if "line" in record:
                records[chapter, record["line"], record["source"]].append(
                    (int(seed), record)
                )
    report = []
    for chapter in sorted(seeds_run):
        report.append(f"\n## {chapter} (seeds {sorted(seeds_run[chapter])})")
        rows = []
        for (name, line, source), runs in records.items():
            if name != chapter:
                continue
            failed = sorted({seed for seed, r in runs if not r["passed"]})
            margins = [
                (r["margin"], seed) for seed, r in runs if r["margin"] is not None
            ]
            worst = min(margins) if margins else (None, None)
            rows.append(
                (
                    bool(failed),
                    worst[0] if worst[0] is not None else 9e9,
                    line,
                    source,
                    failed,
                    worst,
                    runs,
                )
            )
        rows.sort(key=lambda row: (not row[0], row[1]))
        shown = [row for row in rows if row[0]] + [
            row for row in rows if not row[0] and row[1] < 9e9
        ][:tightest]
        for has_failed, _, line, source, failed, (margin, seed), runs in shown:
            state = f"FAILED for seeds {failed}" if has_failed else "passed"
            worst = ""
            if margin is not None:
                record = min(
                    (r for s, r in runs if s == seed and r["margin"] is not None),
                    key=lambda r: r["margin"],
                )
                link = min(
                    (lk for lk in record["links"] if lk["margin"] is not None),
                    key=lambda lk: lk["margin"],
                )
                worst = (
                    f"; worst margin {margin:+.1%} (seed {seed}: "
                    f"{link['left']:.4g} {link['operator']} {link['right']:.4g})"
                )
            report.append(
                f"- line {line} `{source[:90]}`: {state} in {len(runs)} runs{worst}"
            )
    if crashed:
        report.append("\nruns that stopped before the end: " + ", ".join(crashed))
    return "\n".join(report)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("chapters", nargs="*", type=Path)
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "sweep")
    parser.add_argument(
        "--reference-env", action="store_true", help="the environment of `make outputs`"
    )
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        if not args.chapters:
            parser.error("name the chapters to run")
        previous = args.out / "sweep.json"
        if previous.exists() and any(args.out.glob("*.jsonl")):
            commit = json.loads(previous.read_text(encoding="utf-8"))["commit"]
            if commit != _git("rev-parse", "--short", "HEAD"):
                parser.error(
                    f"{args.out} holds a sweep of commit {commit}: choose another"
                    " --out, or delete it"
                )
        write_manifest(args.out, not args.reference_env)
        jobs = [
            (chapter, seed)
            for seed in parse_seeds(args.seeds)
            for chapter in args.chapters
        ]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(
                pool.map(
                    lambda job: run_one(*job, args.out, not args.reference_env), jobs
                )
            )
    summary = summarise(args.out)
    (args.out / "summary.md").write_text(summary + "\n", encoding="utf-8")
    print(summary)


if __name__ == "__main__":
    main()
