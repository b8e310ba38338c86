"""The glossary (chapters/glossary.md) covers the chapters' terms, and the chapters link to it.

A glossary entry is a level-3 heading in lowercase (its anchor, the same in JupyterLab, on GitHub and
on the website), followed by a line with the term in 中文 and in Deutsch and a short definition that
names the chapter introducing it. A chapter links the first use of each term it introduces:
`[hidden state](glossary.md#hidden-state)`.
"""

import re
from pathlib import Path

import jupytext
import pytest

CHAPTERS_DIR = Path(__file__).resolve().parent.parent / "chapters"
GLOSSARY = CHAPTERS_DIR / "glossary.md"
SOURCES = sorted(CHAPTERS_DIR.glob("[0-9][0-9]_*.py"))

GLOSSARY_LINK = re.compile(r"\[([^\]]+)\]\(glossary\.md#([a-z0-9-]+)\)")
_MASKED = re.compile(
    r"\$\$.*?\$\$"  # display math
    r"|\$[^$\n]+\$"  # inline math
    r"|`[^`\n]*`"  # code
    r"|\[[^\]]*\]\([^)]*\)"  # links
    r"|^#[^\n]*",  # headings
    re.S | re.M,
)


def slug(heading):
    """The anchor of a lowercase heading: words joined by hyphens."""
    if heading != heading.lower() or not re.fullmatch(r"[a-z0-9 -]+", heading):
        raise ValueError(
            "glossary headings must be lowercase letters, digits, spaces and hyphens:"
            f" {heading!r}"
        )
    return "-".join(heading.split())


def read_glossary(path):
    """Return {anchor: {"term", "translations", "definition"}} for every level-3 heading of the glossary."""
    entries = {}
    for block in re.split(r"^### ", Path(path).read_text(encoding="utf-8"), flags=re.M)[
        1:
    ]:
        heading, _, body = block.partition("\n")
        if slug(heading.strip()) in entries:
            raise ValueError(f"glossary entry {heading.strip()!r} appears twice")
        lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
        if len(lines) < 2:
            raise ValueError(
                f"glossary entry {heading!r} needs a translation line and a definition"
            )
        entries[slug(heading.strip())] = {
            "term": heading.strip(),
            "translations": lines[0],
            "definition": " ".join(lines[1:]),
        }
    return entries


def prose(markdown):
    """The markdown with math, code, links and headings blanked out (same length, so offsets still match)."""
    return _MASKED.sub(lambda match: re.sub(r"[^\n]", " ", match.group()), markdown)


def glossary_links(markdown_cells):
    """Every glossary link in a chapter's markdown cells, in reading order: (cell index, text, anchor, offset)."""
    return [
        (index, match.group(1), match.group(2), match.start())
        for index, cell in enumerate(markdown_cells)
        for match in GLOSSARY_LINK.finditer(cell)
    ]


def used_before(markdown_cells, text, cell_index, offset):
    """True when `text` occurs in the prose (case-insensitive, as words) before the given position."""
    pattern = re.compile(
        r"(?<![\w-])" + r"\s+".join(map(re.escape, text.split())) + r"(?![\w-])", re.I
    )
    earlier = [prose(cell) for cell in markdown_cells[:cell_index]] + [
        prose(markdown_cells[cell_index][:offset])
    ]
    return any(pattern.search(cell) for cell in earlier)


def markdown_cells(source):
    return [
        cell.source
        for cell in jupytext.read(source).cells
        if cell.cell_type == "markdown"
    ]


def introducing_chapter(entry):
    """The file name of the chapter the definition points to, e.g. 03_lstm_gru.ipynb."""
    found = re.findall(r"\((\d\d_\w+)\.ipynb\)", entry["definition"])
    return f"{found[-1]}.py" if found else None


def test_every_entry_has_chinese_german_and_a_chapter():
    entries = read_glossary(GLOSSARY)
    assert len(entries) >= 20
    for anchor, entry in entries.items():
        assert re.search(r"中文\s*\S", entry["translations"]), f"{anchor}: no 中文 term"
        assert re.search(r"[\u4e00-\u9fff]", entry["translations"]), (
            f"{anchor}: 中文 without Chinese"
        )
        assert re.search(r"Deutsch\s*\S", entry["translations"]), (
            f"{anchor}: no Deutsch term"
        )
        chapter = introducing_chapter(entry)
        assert chapter and (CHAPTERS_DIR / chapter).exists(), (
            f"{anchor}: no link to the chapter that introduces it"
        )


def test_every_entry_is_linked_from_the_chapter_that_introduces_it():
    for anchor, entry in read_glossary(GLOSSARY).items():
        anchors = [
            link[2]
            for link in glossary_links(
                markdown_cells(CHAPTERS_DIR / introducing_chapter(entry))
            )
        ]
        assert anchor in anchors, (
            f"{introducing_chapter(entry)} does not link its term {entry['term']!r}"
        )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_glossary_links_resolve_and_mark_the_first_use(source):
    entries = read_glossary(GLOSSARY)
    cells = markdown_cells(source)
    links = glossary_links(cells)
    for index, text, anchor, offset in links:
        assert anchor in entries, (
            f"{source.name}: link to a missing glossary entry #{anchor}"
        )
        assert not used_before(cells, text, index, offset), (
            f"{source.name}: {text!r} is used before its link"
        )
    anchors = [link[2] for link in links]
    assert len(anchors) == len(set(anchors)), (
        f"{source.name}: a term is linked more than once"
    )


def test_headings_must_be_lowercase_words():
    assert slug("hidden state") == "hidden-state"
    with pytest.raises(ValueError, match="lowercase"):
        slug("Hidden State")


def test_prose_hides_math_code_and_links():
    text = "a $h_t$ b `code` [c](d) e\n# heading\n$$x$$ f"
    masked = prose(text)
    assert len(masked) == len(text)
    assert masked.split() == ["a", "b", "e", "f"]


def test_a_term_defined_twice_is_refused(tmp_path):
    glossary = tmp_path / "glossary.md"
    entry = (
        "### hidden state\n中文 隐藏状态 · Deutsch verborgener Zustand\n\nThe state."
        " First used in chapter 1.\n\n"
    )
    glossary.write_text(entry * 2, encoding="utf-8")
    with pytest.raises(ValueError, match="appears twice"):
        read_glossary(glossary)
