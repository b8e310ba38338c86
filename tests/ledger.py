"""The claims ledger: every assert of every chapter with how much room it had over the last seed sweep.

    python -m tests.ledger SWEEP_DIR [SWEEP_DIR ...]     writes site/claims_ledger.json (make ledger)

Each SWEEP_DIR holds `tests.sweep` logs (CHAPTER_seedN.jsonl) and its sweep.json, which names the
commit swept; for each chapter the last directory named that has logs of it is used, and a chapter
with no logs keeps its stored entry while its code is unchanged. A chapter's code is fingerprinted
without the asserts' messages (its syntax tree, so comments, prose and layout do not count): the
swept commit's code must have the current fingerprint, and then the k-th assert swept is the k-th
assert now. Messages, the sentences the ledger shows, can be reworded without a new sweep (`make
ledger SWEEPS=` refreshes them); any other change to a chapter's code needs one. An assert the sweep
never reached (a branch taken only on a GPU) is listed as not executed. `tests/test_ledger.py` checks
on every `make test` that the stored ledger matches the chapters' code and messages; site/stage.py
renders it as the appendix page "How sure is each claim?". What the chapters import (utils/, data/,
the pinned libraries) is not fingerprinted; the page names the commit that was swept.
"""

import ast
import hashlib
import json
import math
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ROOT / "site" / "claims_ledger.json"
CHAPTERS = ROOT / "chapters"


class Assert(NamedTuple):
    line: int
    check: str  # the tested expression, its lines joined by single spaces
    message: str  # a plain string, or an f-string's literal parts with … for each value
    section: str  # the last `## ` heading above the assert


def chapter_asserts(source_text):
    """[Assert] of every assert in a chapter's source, in source order."""
    lines = source_text.splitlines()
    headings = [
        (number, line.removeprefix("# ## ").strip())
        for number, line in enumerate(lines, 1)
        if line.startswith("# ## ")
    ]
    found = []
    for node in ast.walk(ast.parse(source_text)):
        if isinstance(node, ast.Assert):
            check = re.sub(
                r"\s*\n\s*", " ", ast.get_source_segment(source_text, node.test)
            )
            message = ""
            if isinstance(node.msg, ast.Constant) and isinstance(node.msg.value, str):
                message = node.msg.value
            elif isinstance(node.msg, ast.JoinedStr):
                message = "".join(
                    part.value if isinstance(part, ast.Constant) else "…"
                    for part in node.msg.values
                )
            section = next(
                (title for number, title in reversed(headings) if number < node.lineno),
                "",
            )
            found.append(Assert(node.lineno, check, message, section))
    return sorted(found)


def canonical_tree(node):
    """The syntax tree as text: node types and field values, with empty fields left out and no positions.

    The same for any layout of the same code (line breaks, parentheses, trailing commas, quotes: what
    `ruff format` changes) and, unlike `ast.dump`, the same on Python 3.11-3.13 (3.12 added empty
    `type_params`, 3.13 dropped empty fields from `ast.dump`)."""
    if isinstance(node, ast.AST):
        fields = [
            f"{name}={canonical_tree(value)}"
            for name, value in ast.iter_fields(node)
            if value is not None
            and value != []
            and name not in ("type_comment", "kind")
        ]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(canonical_tree(item) for item in node) + "]"
    return repr(node)


def code_fingerprint(source_text):
    """sha256 of the chapter's code without comments (the prose), its asserts' messages and its layout: what
    the sweep measured. Built from the syntax tree (comments are not in it; the asserts' messages and
    the docstrings are taken out), serialised by `canonical_tree`."""
    tree = ast.parse(source_text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            node.msg = None
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(
                body[0].value.value, str
            ):
                body[0].value.value = ""  # a docstring is prose, like a comment
    return hashlib.sha256(canonical_tree(tree).encode("utf-8")).hexdigest()[:16]


def swept_source(commit, path):
    """The chapter's source at the swept commit (git show)."""
    result = subprocess.run(
        ["git", "show", f"{commit}:chapters/{path.name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if result.returncode != 0:
        raise SystemExit(
            f"cannot read chapters/{path.name} at the swept commit {commit}:"
            f" {result.stderr.strip()}"
        )
    return result.stdout


def sweep_manifest(directory):
    """The sweep's OUT/sweep.json (tests/sweep.py): its environment and commit. A sweep in the environment
    of `make outputs` (--reference-env) or of uncommitted chapters is not what the ledger reports.
    """
    path = directory / "sweep.json"
    if not path.exists():
        raise SystemExit(
            f"{directory}: no sweep.json (made by tests/sweep.py since the ledger"
            " exists): sweep again"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest["environment"] != "perturbed":
        raise SystemExit(
            f"{directory}: swept in the {manifest['environment']} environment, not the"
            " perturbed one"
        )
    if manifest["uncommitted_changes"]:
        raise SystemExit(
            f"{directory}: swept with uncommitted changes to the chapters, utils or"
            " data"
        )
    return manifest


def sweep_logs(directories):
    """{chapter: (directory, {seed: [records]})}: each chapter from the last directory that has it."""
    chosen = {}
    for directory in map(Path, directories):
        sweep_manifest(directory)
        by_chapter = defaultdict(dict)
        for log in sorted(directory.glob("*_seed*.jsonl")):
            chapter, seed = log.stem.rsplit("_seed", 1)
            records = [
                json.loads(line)
                for line in log.read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
            if not records or "seconds" not in records[-1]:
                raise SystemExit(f"{log}: the run stopped before the end")
            by_chapter[chapter][int(seed)] = [r for r in records if "line" in r]
        chosen.update(
            {chapter: (directory, seeds) for chapter, seeds in by_chapter.items()}
        )
    return chosen


def worst_case(runs):
    """The tightest comparison over all seeds and executions: {seed, left, operator, right, margin}."""
    candidates = [
        (link["margin"], seed, link)
        for seed, record in runs
        for link in record["links"]
        if link["margin"] is not None
    ]
    if not candidates:
        return None
    margin, seed, link = min(candidates, key=lambda c: c[0])
    return {
        "seed": seed,
        "left": link["left"],
        "operator": link["operator"],
        "right": link["right"],
        "margin": margin,
    }


def margin_by_seed(runs):
    """{seed: the smallest relative margin of the assert's executions with that seed}, numeric links only."""
    by_seed = {}
    for seed, record in runs:
        for link in record["links"]:
            if link["margin"] is not None:
                by_seed[str(seed)] = min(
                    by_seed.get(str(seed), link["margin"]), link["margin"]
                )
    return dict(sorted(by_seed.items(), key=lambda item: int(item[0])))


def runs_by_assert(source_path, directory, seeds, commit, swept):
    """[(seed, record)] for each assert of the chapter, in source order: the sweep's records are matched
    by their line in the swept commit's source `swept`, whose code must be the chapter's code now.
    """
    current = source_path.read_text(encoding="utf-8")
    if code_fingerprint(swept) != code_fingerprint(current):
        raise SystemExit(
            f"{source_path.name}: its code changed since the sweep of {commit} (not"
            " only assert messages): sweep it again"
        )
    index_of_line = {item.line: k for k, item in enumerate(chapter_asserts(swept))}
    runs = [[] for _ in index_of_line]
    for seed, records in sorted(seeds.items()):
        for record in records:
            if record["line"] not in index_of_line:
                raise SystemExit(
                    f"{directory}: a record at line {record['line']}, where {commit}'s "
                    f"{source_path.name} has no assert"
                )
            runs[index_of_line[record["line"]]].append((seed, record))
    return runs


# abs(x) < b, one comparison
FOLDED = re.compile(r"(np\.)?abs\((?:[^()]|\([^()]*\))*\)(\.max\(\))?\s*<=?\s*[^<>=]+$")


def t_cdf(t, df):
    """P(T < t) for Student's t with df degrees of freedom: the integral of c cos^(df-1) u over
    u in (-pi/2, atan(t / sqrt(df))), by Simpson's rule (a bounded interval, so accurate far in the tails).
    """
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(math.pi)
    upper, steps = math.atan(t / math.sqrt(df)), 4000
    width = (upper + math.pi / 2) / steps
    weights = [1 if i in (0, steps) else 4 if i % 2 else 2 for i in range(steps + 1)]
    return (
        c
        * width
        / 3
        * sum(
            w * math.cos(-math.pi / 2 + i * width) ** (df - 1)
            for i, w in enumerate(weights)
        )
    )


def floor_safe_zeros(triples):
    """(left, operator, right) per seed with a zero on the side the check wants small (`left` of a < b,
    `right` of a > b) raised to half the smallest positive value of that side, when every other value
    is positive: a rate that was 0 on one seed is the safest case, and should not move the whole series
    from the log-ratio scale to the raw one."""
    if len({operator for _, operator, _ in triples}) != 1:
        return triples
    small_side = 0 if triples[0][1] in ("<", "<=") else 2
    sides = [[triple[0] for triple in triples], [triple[2] for triple in triples]]
    small, large = (sides[0], sides[1]) if small_side == 0 else (sides[1], sides[0])
    positive = [value for value in small if value > 0]
    if (
        not positive
        or any(value < 0 for value in small)
        or any(value <= 0 for value in large)
    ):
        return triples
    floored = [value if value > 0 else min(positive) / 2 for value in small]
    return [
        (value, operator, right) if small_side == 0 else (left, operator, value)
        for value, (left, operator, right) in zip(floored, triples, strict=True)
    ]


def failure_chance(runs, check=""):
    """The chance that a seed not swept fails the assert, from the seeds that were: None without numeric
    comparisons, fewer than three seeds, or only structural ones (a bound of exactly 0); "same" when
    every comparison had the same values on every seed; else a number, summed over the assert's
    comparisons (the j-th link of its k-th execution in a run: a union bound).
    - A comparison `a < b` (or >, <=, >=): the gap to the bound on each seed, on the log of the ratio
      when both sides are positive on every seed (a zero on the side that should be small counts as
      half that side's smallest positive value), else the difference; a new seed's gap is predicted
      from the n seeds' mean m and SD s with Student's t: P(gap < 0) = T_(n-1)(-m / (s sqrt(1 + 1/n))).
    - A check `abs(x) < b`: Chebyshev's inequality, P(|x| >= b) <= E[(x / b)^2], estimated by the mean
      over seeds of (|x| / b)^2 (no assumption on the distribution, but E is estimated from n seeds).
    """
    series = defaultdict(dict)
    executions = defaultdict(int)
    for seed, record in runs:
        k = executions[seed]
        executions[seed] += 1
        for j, link in enumerate(record["links"]):
            if (
                link["operator"] in ("<", "<=", ">", ">=")
                and link["margin"] is not None
            ):
                series[k, j][seed] = (link["left"], link["operator"], link["right"])
    folded = bool(FOLDED.fullmatch(check))
    chances, same = [], 0
    for by_seed in series.values():
        triples = list(by_seed.values())
        if len(triples) < 3 or all(right == 0 for _, _, right in triples):
            continue
        if len({(left, right) for left, _, right in triples}) == 1:
            same += 1
            continue
        if folded and all(right > 0 for _, _, right in triples):
            chances.append(
                min(
                    1.0,
                    sum((abs(left) / right) ** 2 for left, _, right in triples)
                    / len(triples),
                )
            )
            continue
        triples = floor_safe_zeros(triples)
        logs = all(left > 0 and right > 0 for left, _, right in triples)
        gaps = []
        for left, operator, right in triples:
            difference = math.log(left / right) if logs else left - right
            gaps.append(difference if operator in (">", ">=") else -difference)
        n = len(gaps)
        mean = sum(gaps) / n
        sd = (sum((gap - mean) ** 2 for gap in gaps) / (n - 1)) ** 0.5
        chances.append(
            t_cdf(-mean / (sd * math.sqrt(1 + 1 / n)), n - 1)
            if sd > 0
            else float(mean <= 0)
        )
    if not chances:
        return "same" if same else None
    return min(1.0, float(f"{sum(chances):.3g}"))


def chance_is_bound(check):
    """Whether failure_chance is Chebyshev's upper bound (a check `abs(x) < b`) rather than a prediction."""
    return bool(FOLDED.fullmatch(check))


def chapter_entry(source_path, directory, seeds, swept=None):
    """The ledger entry of one chapter; `swept` is its source at the swept commit (read with git if None)."""
    manifest = sweep_manifest(directory)
    if swept is None:
        swept = swept_source(manifest["commit"], source_path)
    current = chapter_asserts(source_path.read_text(encoding="utf-8"))
    entries = []
    all_runs = runs_by_assert(source_path, directory, seeds, manifest["commit"], swept)
    for item, runs in zip(current, all_runs, strict=True):
        entries.append(
            {
                "check": item.check,
                "message": item.message,
                "section": item.section,
                "executions": len(runs),
                "failed_seeds": sorted(
                    {seed for seed, record in runs if not record["passed"]}
                ),
                "worst": worst_case(runs),
                "margin_by_seed": margin_by_seed(runs),
                "failure_chance": failure_chance(runs, item.check),
                "chance_is_bound": chance_is_bound(item.check),
            }
        )
    return {
        "sweep": {
            "commit": manifest["commit"],
            "started": manifest["started"],
            "variables": manifest["variables"],
        },
        "fingerprint": code_fingerprint(source_path.read_text(encoding="utf-8")),
        "seeds": sorted(seeds),
        "not_executed": sum(1 for e in entries if not e["executions"]),
        "asserts": entries,
    }


def stored_ledger():
    return (
        json.loads(LEDGER.read_text(encoding="utf-8"))
        if LEDGER.exists()
        else {"chapters": {}}
    )


def stale_code(source_path, entry):
    """Why the chapter's ledger entry no longer describes its code, or None."""
    if code_fingerprint(source_path.read_text(encoding="utf-8")) != entry.get(
        "fingerprint"
    ):
        return "its code changed since the sweep (not only assert messages)"
    return None


def stale_texts(source_path, entry):
    """The first assert whose message or section differs from the ledger's (same code), or None."""
    for item, listed in zip(
        chapter_asserts(source_path.read_text(encoding="utf-8")),
        entry["asserts"],
        strict=True,
    ):
        if (item.message, item.section) != (listed["message"], listed["section"]):
            return (
                f"the assert `{item.check[:60]}` now reads"
                f" {item.message or item.section!r}"
            )
    return None


def refreshed(source_path, entry):
    """A stored entry whose code is current, with the chapter's current messages, sections and checks."""
    current = chapter_asserts(source_path.read_text(encoding="utf-8"))
    asserts = [
        {
            **listed,
            "check": item.check,
            "message": item.message,
            "section": item.section,
            "chance_is_bound": chance_is_bound(item.check),
        }
        for item, listed in zip(current, entry["asserts"], strict=True)
    ]
    return {**entry, "asserts": asserts}


def build(directories):
    """The ledger of every chapter: from the sweep logs where some are given, else the stored ledger's entry
    while the chapter's code is unchanged (so one changed chapter can be swept alone).
    """
    logs = sweep_logs(directories)
    stored = stored_ledger()["chapters"]
    chapters = {}
    for path in sorted(CHAPTERS.glob("[0-9][0-9]_*.py")):
        if path.stem in logs:
            chapters[path.stem] = chapter_entry(path, *logs[path.stem])
        elif path.stem in stored and stale_code(path, stored[path.stem]) is None:
            chapters[path.stem] = refreshed(path, stored[path.stem])
        else:
            raise SystemExit(
                f"{path.stem}: no sweep logs and no current ledger entry: make sweep"
                f" CHAPTERS=chapters/{path.name} SWEEP_OUT=DIR, then make ledger"
                " SWEEPS=DIR"
            )
    return {"chapters": chapters}


def main(argv=None):
    directories = sys.argv[1:] if argv is None else argv
    ledger = build(directories)
    LEDGER.write_text(
        json.dumps(ledger, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    total = sum(len(c["asserts"]) for c in ledger["chapters"].values())
    print(
        f"{LEDGER.relative_to(ROOT)}: {total} asserts in {len(ledger['chapters'])}"
        " chapters"
    )


if __name__ == "__main__":
    main()
