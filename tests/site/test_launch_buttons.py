"""Launch buttons: with a repository URL configured, jupyter-book puts an "open in Colab" link on every
chapter page that points at the chapter's notebook in that repository; without one, there is none.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "site"))
from stage import with_launch_buttons  # noqa: E402

FORK = "https://github.com/example-teacher/rnn-book"
BUILT_SITE = ROOT / "build" / "site" / "_build" / "html"


def test_without_a_repository_the_config_is_unchanged():
    text = (ROOT / "site" / "_config.yml").read_text(encoding="utf-8")
    assert with_launch_buttons(text, "") == text


@pytest.fixture(scope="module")
def mini_site(tmp_path_factory):
    """A one-chapter book built by jupyter-book with the site's configuration and FORK set."""
    source = tmp_path_factory.mktemp("site_src")
    config = with_launch_buttons(
        (ROOT / "site" / "_config.yml").read_text(encoding="utf-8"), FORK
    )
    (source / "_config.yml").write_text(
        config.replace('html_static_path: ["mathjax_static"]', "html_static_path: []"),
        encoding="utf-8",
    )
    (source / "_toc.yml").write_text(
        "format: jb-book\nroot: index\nchapters:\n  - file: chapters/01_tiny\n",
        encoding="utf-8",
    )
    (source / "index.md").write_text("# Home\n", encoding="utf-8")
    (source / "chapters").mkdir()
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# A tiny chapter"),
            nbformat.v4.new_code_cell("1 + 1"),
        ]
    )
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, source / "chapters" / "01_tiny.ipynb")
    output = tmp_path_factory.mktemp("site_out")
    subprocess.run(
        [
            shutil.which("jupyter-book", path=str(Path(sys.executable).parent)),
            "build",
            str(source),
            "--path-output",
            str(output),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return output / "_build" / "html"


def test_a_configured_repository_gives_each_chapter_a_colab_button(mini_site):
    page = (mini_site / "chapters" / "01_tiny.html").read_text(encoding="utf-8")
    assert (
        f"https://colab.research.google.com/github/{FORK.removeprefix('https://github.com/')}"
        "/blob/main/chapters/01_tiny.ipynb" in page
    )
    assert f'href="{FORK}"' in page  # the repository button


def test_the_books_site_has_no_launch_button_while_no_repository_is_set():
    from utils.bootstrap import configured_repository

    pages = sorted(BUILT_SITE.glob("chapters/[0-9][0-9]_*.html"))
    assert pages, "build the site first: make html"
    if configured_repository():
        assert all(
            "colab.research.google.com" in p.read_text(encoding="utf-8") for p in pages
        )
    else:
        assert not any(
            "colab.research.google.com" in p.read_text(encoding="utf-8") for p in pages
        )
