"""What Windows does differently, checked on Linux: Python opens text files in the locale's code page
there (cp1252 for most readers) unless told otherwise, and the book's files are UTF-8 (Spanish verses,
the glossary's 中文, dashes in every chapter). So every text-mode open, read_text and write_text in the
book's Python must name its encoding; a missing one would pass here and fail on a reader's Windows.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    p
    for folder in ("chapters", "utils", "data", "classroom", "site", "tests")
    for p in (ROOT / folder).rglob("*.py")
    if "build" not in p.parts
)
BINARY_OPENERS = {"tarfile", "gzip", "zipfile", "bz2", "lzma", "os", "archive"}


def text_io_without_encoding(tree):
    """(line, call name) of each text-mode open/read_text/write_text call that does not pass encoding=."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or any(
            k.arg == "encoding" for k in node.keywords
        ):
            continue
        function = node.func
        name = (
            function.attr
            if isinstance(function, ast.Attribute)
            else getattr(function, "id", None)
        )
        if name in ("read_text", "write_text"):
            yield node.lineno, name
        elif name == "open":
            if (
                isinstance(function, ast.Attribute)
                and getattr(function.value, "id", None) in BINARY_OPENERS
            ):
                continue
            mode_arguments = (
                node.args[1:2] if isinstance(function, ast.Name) else node.args[:1]
            )
            modes = [a.value for a in mode_arguments if isinstance(a, ast.Constant)]
            modes += [
                k.value.value
                for k in node.keywords
                if k.arg == "mode" and isinstance(k.value, ast.Constant)
            ]
            if not any("b" in mode for mode in modes):
                yield node.lineno, name


@pytest.mark.parametrize(
    "source", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_text_files_are_opened_as_utf8(source):
    found = list(
        text_io_without_encoding(ast.parse(source.read_text(encoding="utf-8")))
    )
    assert not found, (
        f"{source.name}: text I/O without encoding= at {found} (Windows would use its"
        " code page)"
    )


def test_the_check_finds_a_missing_encoding():
    code = (
        'open("a.txt")\nopen("a.bin",'
        ' "rb")\nPath("x").read_text()\nPath("y").write_text("é", encoding="utf-8")\n'
    )
    assert list(text_io_without_encoding(ast.parse(code))) == [
        (1, "open"),
        (3, "read_text"),
    ]
