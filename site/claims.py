"""The appendix page "How sure is each claim?" from site/claims_ledger.json (built by tests/ledger.py from
the last seed sweep). Standard library only: site/stage.py runs it in the website's venv."""

import json
import math
import re
from pathlib import Path

LEDGER = Path(__file__).resolve().parent / "claims_ledger.json"
THIN = 2.0  # fewer seed-to-seed standard deviations than this from failing is marked on the page

INTRODUCTION = """\
# How sure is each claim?

Every claim this book makes about a result is an `assert` in its chapter, executed each time the chapter
runs: on your machine, in the tests, and in the seed sweep this page comes from. The sweep ran every
chapter once for each of the seeds {seeds}, in another numeric environment than the stored outputs were made
in ({environment}), and recorded each assert's values. Each row gives the claim (the assert's message),
the check itself, and for a check that compares numbers:

- *Worst case*: both sides of its tightest comparison over all runs, and the seed it came from.
- *Room*: that comparison's relative margin, how far the bound could move, as a share of the larger
  side, before the assert fails: $(b - a) / \\max(|a|, |b|)$ for $a < b$. An accuracy of 1 against a
  bound of 0.95 has 5 % room and can have no more, so read it with the next column.
- *Seeds*: how many seed-to-seed standard deviations the comparison's mean over the seeds lies from
  failing (the smallest over the comparisons an assert makes; for two positive sides, measured on
  the log of their ratio), or *same* when the value was the same for every seed (a property of the
  data, a computation without training, or a saturated score). Below {thin} (marked **thin**), an
  unseen seed fails it now and then: if the values were normal, about one seed in {one_in} at {thin}
  standard deviations. The reading is cautious when a value scatters over orders of magnitude on the
  passing side (a small number beside a large room is that case). For a check `abs(x) < b` the
  column is $b$ over the root mean square of $|x|$, which bounds the chance of failing by one over its
  square, whatever the distribution (Chebyshev's inequality).

Checks that compare no numbers (`np.allclose`, `all(...)`, equality of shapes or counts) are listed as
held or not. The ledger is rebuilt by `make sweep` and `make ledger`; a test fails when a chapter's
asserts and this page no longer match.
"""


def _text(text):
    """Plain text for a Markdown table cell: no emphasis, math, HTML or column breaks by accident."""
    return re.sub(r"([\\`*_\[\]<>|$#~])", r"\\\1", text)


def _code(text):
    """Inline code for a Markdown table cell (a | inside code must still be escaped in a table)."""
    fence = "``" if "`" in text else "`"
    return f"{fence}{text.replace('|', chr(92) + '|')}{fence}"


def _number(value):
    return f"{value:.4g}"


def _percent(margin):
    return f"{100 * margin:.0f} %" if abs(margin) >= 0.01 else f"{100 * margin:.2g} %"


def _spread(spread):
    if spread is None:
        return ""
    if spread == "same":
        return "same"
    if spread >= 100:
        return "over 100"
    return f"{spread:.1f}" + (" **thin**" if spread < THIN else "")


def _row(item):
    claim = _text(item["message"]) if item["message"] else "(no message)"
    section = item["section"].split(".")[0] if item["section"] else ""
    worst = item["worst"]
    room = _percent(worst["margin"]) if worst else ""
    if not item["executions"]:
        outcome = "not executed on the CPU"
    elif item["failed_seeds"]:
        outcome = "**failed** for seed " + ", ".join(map(str, item["failed_seeds"]))
    elif worst is None:
        outcome = "held for every seed"
    else:
        outcome = (f"{_number(worst['left'])} {_text(worst['operator'])} {_number(worst['right'])} "
                   f"(seed {worst['seed']})")
    return f"| {section} | {claim}<br>{_code(item['check'])} | {outcome} | {room} | {_spread(item['seed_spread'])} |"


def _summary(chapters, titles):
    lines = ["| Chapter | Asserts | Compare numbers | Thin | Failed | Fewest seed SDs |", "|---|--:|--:|--:|--:|--:|"]
    for stem, entry in chapters.items():
        numeric = sum(1 for item in entry["asserts"] if item["worst"])
        spreads = [item["seed_spread"] for item in entry["asserts"] if isinstance(item["seed_spread"], float)]
        failed = sum(1 for item in entry["asserts"] if item["failed_seeds"])
        thin = sum(1 for spread in spreads if spread < THIN)
        fewest = f"{min(spreads):.1f}" if spreads else ""
        lines.append(f"| [{_text(titles.get(stem, stem))}]({stem}.ipynb) | {len(entry['asserts'])} | "
                     f"{numeric} | {thin} | {failed} | {fewest} |")
    return "\n".join(lines)


def _normal_tail(z):
    """P(X < -z) for a standard normal X."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def _seed_range(seeds):
    seeds = sorted(seeds)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def render(ledger, titles):
    """The page's Markdown. `titles` maps a chapter's stem to its title (the notebook's first heading)."""
    chapters = ledger["chapters"]
    if not chapters:
        raise ValueError("the claims ledger lists no chapter")
    first = next(iter(chapters.values()))
    variables = first["sweep"]["variables"]
    environment = ", ".join(f"`{name}={variables[name]}`" for name in ("ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS")
                            if name in variables)
    seed_sets = {tuple(entry["seeds"]) for entry in chapters.values()}
    seeds = _seed_range(first["seeds"]) if len(seed_sets) == 1 else "listed with each chapter"
    parts = [INTRODUCTION.format(seeds=seeds, environment=environment or "the perturbed environment",
                                 thin=f"{THIN:g}", one_in=round(1 / _normal_tail(THIN))),
             _summary(chapters, titles)]
    for stem, entry in chapters.items():
        sweep = entry["sweep"]
        parts.append(f"## {_text(titles.get(stem, stem))}\n\n"
                     f"Swept for seeds {_seed_range(entry['seeds'])} at commit `{sweep['commit']}` "
                     f"({sweep['started']}). [Open the chapter]({stem}.ipynb).\n\n"
                     "| § | Claim, and its check | Worst case | Room | Seeds |\n|--:|---|---|--:|--:|\n"
                     + "\n".join(_row(item) for item in entry["asserts"]))
    return "\n\n".join(parts) + "\n"


def load_ledger(path=LEDGER):
    return json.loads(Path(path).read_text(encoding="utf-8"))
