"""The claims ledger: every assert of every chapter with how much room it had over the last seed sweep.

    python -m tests.ledger SWEEP_DIR [SWEEP_DIR ...]     writes site/claims_ledger.json

Each SWEEP_DIR holds `tests.sweep` logs (CHAPTER_seedN.jsonl); for each chapter the last directory
named that has logs of it is used. Every assert of the chapter's current source must have been swept
(its full text recorded by tests/assert_margins.py), or the ledger is not written: a ledger of asserts
that have changed since the sweep would be stale. `tests/test_ledger.py` checks on every `make test`
that the stored ledger still lists exactly the chapters' asserts; site/stage.py renders it as the
appendix page "How sure is each claim?".
"""

import ast
import json
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ROOT / "site" / "claims_ledger.json"
CHAPTERS = ROOT / "chapters"


def chapter_asserts(source_text):
    """[(line, statement, message, section)] of every assert in a chapter's source, in source order.
    `statement` is the assert's text (dedented), `message` its message when that is a plain string or
    an f-string (its literal parts), `section` the last `## ` heading above it."""
    lines = source_text.splitlines()
    headings = [(number, line.removeprefix("# ## ").strip()) for number, line in enumerate(lines, 1)
                if line.startswith("# ## ")]
    found = []
    for node in ast.walk(ast.parse(source_text)):
        if isinstance(node, ast.Assert):
            statement = textwrap.dedent("\n".join(lines[node.lineno - 1:node.end_lineno])).strip()
            message = ""
            if isinstance(node.msg, ast.Constant) and isinstance(node.msg.value, str):
                message = node.msg.value
            elif isinstance(node.msg, ast.JoinedStr):
                message = "".join(part.value if isinstance(part, ast.Constant) else "…" for part in node.msg.values)
            section = next((title for number, title in reversed(headings) if number < node.lineno), "")
            found.append((node.lineno, statement, message, section))
    return sorted(found)


def sweep_logs(directories):
    """{chapter: (directory, {seed: [records]})}: each chapter from the last directory that has it."""
    chosen = {}
    for directory in map(Path, directories):
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


def chapter_entry(source_path, directory, seeds):
    runs_by_statement = defaultdict(list)
    for seed, records in seeds.items():
        for record in records:
            if "statement" not in record:
                raise SystemExit(f"{directory}: logs without assert texts (made before tests/assert_margins.py "
                                 "recorded them): sweep again")
            runs_by_statement[record["statement"]].append((seed, record))
    current = chapter_asserts(source_path.read_text(encoding="utf-8"))
    swept = set(runs_by_statement)
    missing = [statement for _, statement, _, _ in current if statement not in swept]
    unknown = swept - {statement for _, statement, _, _ in current}
    if unknown:
        raise SystemExit(f"{source_path.name}: the sweep in {directory} has asserts the chapter no longer has "
                         f"(e.g. {sorted(unknown)[0][:80]!r}): sweep again")
    entries = []
    for _line, statement, message, section in current:
        runs = runs_by_statement.get(statement, [])
        entries.append({"statement": statement, "message": message, "section": section, "executions": len(runs),
                        "failed_seeds": sorted({seed for seed, record in runs if not record["passed"]}),
                        "worst": worst_case(runs)})
    return {"sweep": directory.name, "seeds": sorted(seeds), "not_executed": len(missing), "asserts": entries}


def build(directories):
    logs = sweep_logs(directories)
    chapters = sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))
    absent = [p.stem for p in chapters if p.stem not in logs]
    if absent:
        raise SystemExit(f"no sweep logs for {absent}: run `make sweep` for them")
    return {"chapters": {p.stem: chapter_entry(p, *logs[p.stem]) for p in chapters}}


def main(argv=None):
    directories = sys.argv[1:] if argv is None else argv
    if not directories:
        raise SystemExit(__doc__)
    ledger = build(directories)
    LEDGER.write_text(json.dumps(ledger, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    total = sum(len(c["asserts"]) for c in ledger["chapters"].values())
    print(f"{LEDGER.relative_to(ROOT)}: {total} asserts in {len(ledger['chapters'])} chapters")


if __name__ == "__main__":
    main()
