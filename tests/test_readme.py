"""README.md's chapter table is the generated one (`make readme`), for every chapter that exists."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location(
    "site_readme", ROOT / "site" / "readme.py"
)
readme_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_tool)


def test_readme_table_is_generated_from_the_recorded_times():
    times = json.loads(readme_tool.RECORD.read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    expected = readme_tool.with_table(
        readme, readme_tool.chapter_table(ROOT / "chapters", times)
    )
    assert readme == expected, "README.md's chapter table is stale: run `make readme`"


def test_every_chapter_has_a_recorded_time():
    times = json.loads(readme_tool.RECORD.read_text(encoding="utf-8"))
    for source in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        seconds = times.get(f"chapters/{source.stem}.ipynb", 0)
        assert seconds > 0, (
            f"{source.name}: no recorded time; run `make test`, then `make readme`"
        )


def test_table_rows(tmp_path):
    (tmp_path / "01_first.py").write_text(
        "# %% [markdown]\n# # Chapter 1 — First steps\n", encoding="utf-8"
    )
    table = readme_tool.chapter_table(tmp_path, {"chapters/01_first.ipynb": 41.6})
    assert (
        table.splitlines()[-1]
        == "| 1 | [First steps](chapters/01_first.ipynb) | 42 s |"
    )
    with pytest.raises(ValueError, match="markers"):
        readme_tool.with_table("no markers here", table)


def github_anchor(heading):
    """The anchor GitHub (and jupyter-book's myst_heading_anchors) gives a heading."""
    kept = "".join(c for c in heading.strip().lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def test_the_first_screen_is_short_and_links_the_rest():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = readme.split("\n## Without make", 1)[0]
    assert len(first_screen.splitlines()) <= 50, (
        "the first screen: what the book is, chapters, two commands, links"
    )
    for needed in (
        "chapter-table:begin",
        "make lab",
        "make test",
        "Colab",
        "**More:**",
    ):
        assert needed in first_screen, f"the first screen lacks {needed!r}"
    anchors = {
        github_anchor(line[3:])
        for line in readme.splitlines()
        if line.startswith("## ")
    }
    linked = set(re.findall(r"\]\(#([^)]+)\)", readme))
    assert linked and linked <= anchors, (
        f"links to no heading: {sorted(linked - anchors)}"
    )
    more = first_screen.split("**More:**", 1)[1]
    later = [
        github_anchor(line[3:])
        for line in readme.split("\n## Without make", 1)[1].splitlines()
        if line.startswith("## ")
    ] + ["without-make-windows-macos-linux"]
    assert all(f"(#{anchor})" in more for anchor in later), (
        "every later section is linked from the top"
    )
