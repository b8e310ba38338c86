"""The appendix page "How sure is each claim?" from site/claims_ledger.json (built by tests/ledger.py from
the last seed sweep). Standard library only: site/stage.py runs it in the website's venv.
"""

import json
import math
import re
from pathlib import Path

LEDGER = Path(__file__).resolve().parent / "claims_ledger.json"
THIN = 0.02  # a predicted chance of failing above this (one seed in 50) is marked on the page

INTRODUCTION = """\
# How sure is each claim?

Every claim this book makes about a result is an `assert` in its chapter, executed each time the chapter
runs: on your machine, in the tests, and in the seed sweep this page comes from. The sweep ran every
chapter once for each of the seeds {seeds} in a numeric environment of its own ({environment}: another
instruction set and thread count than the stored outputs were made with), and recorded the values
each assert compared. Each row gives the claim (the assert's message) with its check, and for a check
whose comparison of numbers the recorder sees (`a < b`, chains of them, `and`):

- *Worst case*: both sides of its tightest comparison over all runs, and the seed it came from.
- *Room*: that comparison's relative margin, how far the bound could move, as a share of the larger
  side, before the assert fails: $(b - a) / \\max(|a|, |b|)$ for $a < b$. An accuracy of 1 against a
  bound of 0.95 has 5 % room and can have no more; against a bound of 0 the room is always 100 %.
- *New seed*: the chance that a seed not swept fails the check, predicted from the swept ones. For
  each comparison, its gap to the bound (on the log of the ratio when both sides are positive) on a
  new seed is predicted from the seeds' mean and standard deviation with Student's $t$, which allows
  for estimating both from {n} seeds; for a check `abs(x) < b`, Chebyshev's inequality bounds it by
  the mean of $(x / b)^2$ over the seeds, whatever the distribution of $x$ (shown as ≤, never
  marked: a bound, often far above the real chance). An assert that makes
  several comparisons (or runs in a loop) gets their sum. Above one in {one_in} it is marked
  **thin**. *same* means the values were the same on every seed: a property of the data, a
  computation without training, or a trained score at its ceiling; {n} passes out of {n} alone
  rule out, at 95 % confidence, only failure rates above {ruled_out} %. A blank cell is a comparison with
  a bound of exactly 0 (a structural check such as `x > 0`) or one the recorder cannot see.

These predictions are rough. The bounds were chosen by authors who had seen runs of these same
seeds, so the figures are in-sample; the normal shape behind Student's $t$ is an assumption, which
overstates the risk when a value scatters far on the passing side and can understate it for values
that cluster or are counts. Checks whose numbers the recorder cannot see (`np.allclose`, `all(...)`
over a loop, equality of shapes or counts) are listed as held or not. The page names the commit that
was swept: a test fails when a chapter's code (anything but its asserts' messages) or a message has
changed since, so the page cannot go stale without notice; what the chapters import (`utils/`, the
data, the pinned libraries) is not compared.
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


def _chance(chance, is_bound=False):
    """'1 in N' for a predicted chance, '≤ 1 in N' for Chebyshev's bound (never marked thin: a bound)."""
    if chance is None:
        return ""
    if chance == "same":
        return "same"
    if chance < 1e-4:
        return "< 1 in 10,000"
    if is_bound:
        return f"≤ 1 in {max(1, math.floor(1 / chance)):,}"
    return f"1 in {round(1 / chance):,}" + (" **thin**" if chance > THIN else "")


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
        outcome = (
            f"{_number(worst['left'])} {_text(worst['operator'])}"
            f" {_number(worst['right'])} (seed {worst['seed']})"
        )
    chance = _chance(item["failure_chance"], item.get("chance_is_bound", False))
    return (
        f"| {section} | {claim}<br>{_code(item['check'])} | {outcome} | {room} |"
        f" {chance} |"
    )


def _summary(chapters, titles):
    lines = [
        (
            "| Chapter | Asserts | Comparisons seen | Thin | Failed | Largest predicted"
            " chance a new seed fails |"
        ),
        "|---|--:|--:|--:|--:|--:|",
    ]
    for stem, entry in chapters.items():
        numeric = sum(1 for item in entry["asserts"] if item["worst"])
        chances = [
            item["failure_chance"]
            for item in entry["asserts"]
            if isinstance(item["failure_chance"], float)
            and not item.get("chance_is_bound")
        ]
        failed = sum(1 for item in entry["asserts"] if item["failed_seeds"])
        thin = sum(1 for chance in chances if chance > THIN)
        largest = _chance(max(chances)).replace(" **thin**", "") if chances else ""
        lines.append(
            f"| [{_text(titles.get(stem, stem))}]({stem}.ipynb) |"
            f" {len(entry['asserts'])} | {numeric} | {thin} | {failed} | {largest} |"
        )
    return "\n".join(lines)


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
    environment = ", ".join(
        f"`{name}={variables[name]}`"
        for name in ("ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS")
        if name in variables
    )
    seed_sets = {tuple(entry["seeds"]) for entry in chapters.values()}
    seeds = (
        _seed_range(first["seeds"])
        if len(seed_sets) == 1
        else "listed with each chapter"
    )
    parts = [
        INTRODUCTION.format(
            seeds=seeds,
            environment=environment or "the perturbed environment",
            n=len(first["seeds"]),
            one_in=round(1 / THIN),
            ruled_out=round(100 * (1 - 0.05 ** (1 / len(first["seeds"])))),
        ),
        _summary(chapters, titles),
    ]
    for stem, entry in chapters.items():
        sweep = entry["sweep"]
        parts.append(
            f"## {_text(titles.get(stem, stem))}\n\nSwept for seeds"
            f" {_seed_range(entry['seeds'])} at commit `{sweep['commit']}`"
            f" ({sweep['started']}). [Open the chapter]({stem}.ipynb).\n\n| § | Claim,"
            " and its check | Worst case | Room | New seed |\n|--:|---|---|--:|--:|\n"
            + "\n".join(_row(item) for item in entry["asserts"])
        )
    return "\n\n".join(parts) + "\n"


def load_ledger(path=LEDGER):
    return json.loads(Path(path).read_text(encoding="utf-8"))
