"""The claims ledger: every assert of every chapter with how much room it had over the last seed sweep.

    python -m tests.ledger SWEEP_DIR [SWEEP_DIR ...]     writes site/claims_ledger.json (make ledger)

Each SWEEP_DIR holds `tests.sweep` logs (CHAPTER_seedN.jsonl) and its sweep.json; for each chapter the
last directory named that has logs of it is used, and a chapter with no logs keeps its stored entry as
long as its checks have not changed. An assert is identified by its check, the expression it tests
(the k-th assert with a given check in the chapter is matched with the k-th line the sweep recorded
for that check): its message, the sentence the ledger shows, can be reworded without a new sweep, but
an assert whose check was added, removed or changed needs one. A sweep that ran a check the chapter no
longer has is refused; an assert the sweep never reached (a branch taken only on a GPU) is listed as
not executed. `tests/test_ledger.py` checks on every `make test` that the stored ledger lists exactly
the chapters' asserts; site/stage.py renders it as the appendix page "How sure is each claim?".
"""

import ast
import json
import math
import re
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ROOT / "site" / "claims_ledger.json"
CHAPTERS = ROOT / "chapters"


class Assert(NamedTuple):
    line: int
    check: str      # the tested expression, its lines joined by single spaces
    message: str    # a plain string, or an f-string's literal parts with … for each value
    section: str    # the last `## ` heading above the assert


def check_of(statement):
    """The check of an assert statement's text: `assert a < b, "m"` -> 'a < b'."""
    node = ast.parse(textwrap.dedent(statement).strip()).body[0]
    return re.sub(r"\s*\n\s*", " ", ast.get_source_segment(textwrap.dedent(statement).strip(), node.test))


def chapter_asserts(source_text):
    """[Assert] of every assert in a chapter's source, in source order."""
    lines = source_text.splitlines()
    headings = [(number, line.removeprefix("# ## ").strip()) for number, line in enumerate(lines, 1)
                if line.startswith("# ## ")]
    found = []
    for node in ast.walk(ast.parse(source_text)):
        if isinstance(node, ast.Assert):
            check = re.sub(r"\s*\n\s*", " ", ast.get_source_segment(source_text, node.test))
            message = ""
            if isinstance(node.msg, ast.Constant) and isinstance(node.msg.value, str):
                message = node.msg.value
            elif isinstance(node.msg, ast.JoinedStr):
                message = "".join(part.value if isinstance(part, ast.Constant) else "…" for part in node.msg.values)
            section = next((title for number, title in reversed(headings) if number < node.lineno), "")
            found.append(Assert(node.lineno, check, message, section))
    return sorted(found)


def sweep_manifest(directory):
    """The sweep's OUT/sweep.json (tests/sweep.py): its environment and commit. A sweep in the environment
    of `make outputs` (--reference-env) or of uncommitted chapters is not what the ledger reports."""
    path = directory / "sweep.json"
    if not path.exists():
        raise SystemExit(f"{directory}: no sweep.json (made by tests/sweep.py since the ledger exists): sweep again")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest["environment"] != "perturbed":
        raise SystemExit(f"{directory}: swept in the {manifest['environment']} environment, not the perturbed one")
    if manifest["uncommitted_changes"]:
        raise SystemExit(f"{directory}: swept with uncommitted changes to the chapters, utils or data")
    return manifest


def sweep_logs(directories):
    """{chapter: (directory, {seed: [records]})}: each chapter from the last directory that has it."""
    chosen = {}
    for directory in map(Path, directories):
        sweep_manifest(directory)
        by_chapter = defaultdict(dict)
        for log in sorted(directory.glob("*_seed*.jsonl")):
            chapter, seed = log.stem.rsplit("_seed", 1)
            records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
            if not records or "seconds" not in records[-1]:
                raise SystemExit(f"{log}: the run stopped before the end")
            by_chapter[chapter][int(seed)] = [r for r in records if "line" in r]
        chosen.update({chapter: (directory, seeds) for chapter, seeds in by_chapter.items()})
    return chosen


def worst_case(runs):
    """The tightest comparison over all seeds and executions: {seed, left, operator, right, margin}."""
    candidates = [(link["margin"], seed, link) for seed, record in runs for link in record["links"]
                  if link["margin"] is not None]
    if not candidates:
        return None
    margin, seed, link = min(candidates, key=lambda c: c[0])
    return {"seed": seed, "left": link["left"], "operator": link["operator"], "right": link["right"],
            "margin": margin}


def margin_by_seed(runs):
    """{seed: the smallest relative margin of the assert's executions with that seed}, numeric links only."""
    by_seed = {}
    for seed, record in runs:
        for link in record["links"]:
            if link["margin"] is not None:
                by_seed[str(seed)] = min(by_seed.get(str(seed), link["margin"]), link["margin"])
    return dict(sorted(by_seed.items(), key=lambda item: int(item[0])))


def runs_by_assert(source_path, directory, seeds, current):
    """[(seed, record)] for each of the `current` asserts: the k-th assert with a given check gets the
    records of the k-th distinct source line the sweep recorded for that check."""
    by_check = defaultdict(lambda: defaultdict(list))
    for seed, records in seeds.items():
        for record in records:
            if "statement" not in record:
                raise SystemExit(f"{directory}: logs without assert texts (made before tests/assert_margins.py "
                                 "recorded them): sweep again")
            by_check[check_of(record["statement"])][record["line"]].append((seed, record))
    position = defaultdict(int)
    runs = []
    for item in current:
        lines = sorted(by_check.get(item.check, {}))
        k = position[item.check]
        position[item.check] += 1
        runs.append(by_check[item.check][lines[k]] if k < len(lines) else [])
    unknown = [check for check, lines in by_check.items()
               if len(lines) > sum(1 for item in current if item.check == check)]
    if unknown:
        raise SystemExit(f"{source_path.name}: the sweep in {directory} ran a check the chapter no longer has "
                         f"({unknown[0][:80]!r}): sweep again")
    return runs


FOLDED = re.compile(r"(np\.)?abs\((?:[^()]|\([^()]*\))*\)(\.max\(\))?\s*<=?\s*[^<>=]+$")  # abs(x) < b, one comparison


def seed_spread(runs, check=""):
    """How many seed-to-seed standard deviations the comparisons kept from failing: for each comparison (the
    j-th link of the k-th execution within a run) its gap to the bound on each seed, positive when it passed,
    then mean / SD over the seeds; the smallest over the comparisons. The gap is the log of the ratio of
    the two sides when both are positive on every seed (a quantity that spans orders of magnitude is
    judged by its ratio), else their difference; a comparison with an exact zero on one side (x > 0,
    x == 0) is a structural check and has no spread. None without numeric comparisons or with fewer than
    three seeds; "same" when every gap is the same on every seed (saturated, or no seed in the value).
    For a check `abs(x) < b` (x scattered around 0, or not) it is b over the root mean square of |x|:
    P(|x| >= b) <= 1 / spread**2 by Chebyshev's inequality, whatever the distribution."""
    if FOLDED.fullmatch(check):
        pairs = [(link["left"], link["right"]) for _, record in runs for link in record["links"]
                 if link["margin"] is not None]
        if len(pairs) >= 3 and all(right > 0 for _, right in pairs):
            rms = (sum(left ** 2 for left, _ in pairs) / len(pairs)) ** 0.5
            bound = min(right for _, right in pairs)
            return "same" if rms == 0 else round(bound / rms, 2)
    sides = defaultdict(dict)
    executions = defaultdict(int)
    for seed, record in runs:
        k = executions[seed]
        executions[seed] += 1
        for j, link in enumerate(record["links"]):
            if link["operator"] in ("<", "<=", ">", ">=") and link["margin"] is not None:
                sides[k, j][seed] = (link["left"], link["operator"], link["right"])
    spreads = []
    for by_seed in sides.values():
        triples = list(by_seed.values())
        if len(triples) < 3 or any(left == 0 or right == 0 for left, _, right in triples):
            continue
        logs = all(left > 0 and right > 0 for left, _, right in triples)
        gaps = []
        for left, operator, right in triples:
            difference = math.log(left / right) if logs else left - right
            gaps.append(difference if operator in (">", ">=") else -difference)
        mean = sum(gaps) / len(gaps)
        sd = (sum((gap - mean) ** 2 for gap in gaps) / (len(gaps) - 1)) ** 0.5
        spreads.append(None if sd <= 1e-9 * max(abs(mean), 1e-12) else mean / sd)
    if not spreads:
        return None
    finite = [z for z in spreads if z is not None]
    return round(min(finite), 2) if finite else "same"


def chapter_entry(source_path, directory, seeds):
    current = chapter_asserts(source_path.read_text(encoding="utf-8"))
    entries = []
    for item, runs in zip(current, runs_by_assert(source_path, directory, seeds, current), strict=True):
        entries.append({"check": item.check, "message": item.message, "section": item.section,
                        "executions": len(runs),
                        "failed_seeds": sorted({seed for seed, record in runs if not record["passed"]}),
                        "worst": worst_case(runs), "margin_by_seed": margin_by_seed(runs),
                        "seed_spread": seed_spread(runs, item.check)})
    manifest = sweep_manifest(directory)
    return {"sweep": {"commit": manifest["commit"], "started": manifest["started"],
                      "variables": manifest["variables"]},
            "seeds": sorted(seeds), "not_executed": sum(1 for e in entries if not e["executions"]),
            "asserts": entries}


def stored_ledger():
    return json.loads(LEDGER.read_text(encoding="utf-8")) if LEDGER.exists() else {"chapters": {}}


def stale_checks(source_path, entry):
    """The first difference between a chapter's current checks and its ledger entry's, or None."""
    current = [item.check for item in chapter_asserts(source_path.read_text(encoding="utf-8"))]
    listed = [item["check"] for item in entry["asserts"]]
    if current == listed:
        return None
    added = [c for c in current if c not in listed]
    removed = [c for c in listed if c not in current]
    if added:
        return f"the chapter has an assert the ledger does not: {added[0]!r}"
    if removed:
        return f"the ledger has an assert the chapter no longer has: {removed[0]!r}"
    return "the chapter's asserts are the ledger's in another order or number"


def stale_texts(source_path, entry):
    """The first assert whose message or section differs from the ledger's (same checks), or None."""
    for item, listed in zip(chapter_asserts(source_path.read_text(encoding="utf-8")), entry["asserts"], strict=True):
        if (item.message, item.section) != (listed["message"], listed["section"]):
            return f"the assert `{item.check[:60]}` now reads {item.message or item.section!r}"
    return None


def refreshed(source_path, entry):
    """A stored entry whose checks are current, with the chapter's current messages and sections."""
    current = chapter_asserts(source_path.read_text(encoding="utf-8"))
    asserts = [{**listed, "message": item.message, "section": item.section}
               for item, listed in zip(current, entry["asserts"], strict=True)]
    return {**entry, "asserts": asserts}


def build(directories):
    """The ledger of every chapter: from the sweep logs where some are given, else the stored ledger's entry
    while the chapter's checks are still the ones it lists (so one changed chapter can be swept alone)."""
    logs = sweep_logs(directories)
    stored = stored_ledger()["chapters"]
    chapters = {}
    for path in sorted(CHAPTERS.glob("[0-9][0-9]_*.py")):
        if path.stem in logs:
            chapters[path.stem] = chapter_entry(path, *logs[path.stem])
        elif path.stem in stored and stale_checks(path, stored[path.stem]) is None:
            chapters[path.stem] = refreshed(path, stored[path.stem])
        else:
            raise SystemExit(f"{path.stem}: no sweep logs and no current ledger entry: "
                             f"make sweep CHAPTERS=chapters/{path.name} SWEEP_OUT=DIR, then make ledger SWEEPS=DIR")
    return {"chapters": chapters}


def main(argv=None):
    directories = sys.argv[1:] if argv is None else argv
    ledger = build(directories)
    LEDGER.write_text(json.dumps(ledger, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(len(c["asserts"]) for c in ledger["chapters"].values())
    print(f"{LEDGER.relative_to(ROOT)}: {total} asserts in {len(ledger['chapters'])} chapters")


if __name__ == "__main__":
    main()
