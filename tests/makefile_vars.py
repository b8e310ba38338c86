"""Values the tests read from the Makefile, so that a test runs exactly what a `make` target runs."""

import re
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"


def makefile_variable(name, makefile=MAKEFILE):
    """The text of a Makefile line `NAME := ...` (continuation lines joined), stripped."""
    text = Path(makefile).read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(rf"^{re.escape(name)} :=(.*)$", text, flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"{makefile} has no line `{name} := ...`")
    return " ".join(match.group(1).split())


def makefile_env(name, makefile=MAKEFILE):
    """{'VAR': 'value'} of a Makefile line `NAME := VAR=value VAR2=value2`."""
    pairs = [item.split("=", 1) for item in makefile_variable(name, makefile).split()]
    if not all(len(pair) == 2 for pair in pairs):
        raise ValueError(f"{name} in {makefile} must list VAR=value pairs only")
    return dict(pairs)
