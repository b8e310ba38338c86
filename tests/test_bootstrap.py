"""utils.bootstrap: every chapter's first code cell finds utils/ from any folder inside the book, fails
clearly on its own without a repository, and installs only what a platform lacks."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from utils import bootstrap

ROOT = Path(__file__).resolve().parent.parent


def test_every_chapter_starts_with_the_template_cell():
    bootstrap.main(["--check"])  # raises SystemExit naming the chapter otherwise
    for path in bootstrap.chapter_notebooks():
        code_cells = [
            c
            for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "code"
        ]
        assert code_cells[0]["metadata"].get("tags") == [bootstrap.TAG], (
            f"{path.name}: bootstrap is not first"
        )
        assert code_cells[0]["outputs"] == [], (
            f"{path.name}: inside the book the cell prints nothing"
        )
        assert code_cells[0]["metadata"].get("jupyter") == {"source_hidden": True}, (
            f"{path.name}: not collapsed"
        )
        pair = path.with_suffix(".py").read_text(encoding="utf-8")
        assert '# %% jupyter={"source_hidden": true} tags=["bootstrap"]\n' in pair, (
            f"{path.name}: .py not collapsed"
        )


def test_check_names_a_chapter_whose_cell_is_expanded(tmp_path):
    notebook = tmp_path / "01_expanded.ipynb"
    content = json.loads(bootstrap.chapter_notebooks()[0].read_text(encoding="utf-8"))
    bootstrap.bootstrap_cells(content)[0]["metadata"].pop("jupyter")
    notebook.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(SystemExit, match="01_expanded.ipynb"):
        bootstrap.main(["--check", str(notebook)])


def test_check_names_a_stale_chapter(tmp_path):
    notebook = tmp_path / "01_stale.ipynb"
    shutil.copy(bootstrap.chapter_notebooks()[0], notebook)
    bootstrap.write_repository(notebook, "https://example.org/old.git", pair=False)
    with pytest.raises(SystemExit, match="01_stale.ipynb"):
        bootstrap.main(["--check", str(notebook)])


def test_repository_is_read_from_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n', encoding="utf-8")
    assert bootstrap.configured_repository(pyproject) == ""
    pyproject.write_text(
        '[project]\nname = "x"\n[project.urls]\nRepository ='
        ' "https://github.com/me/rnn-book"\n',
        encoding="utf-8",
    )
    assert (
        bootstrap.configured_repository(pyproject) == "https://github.com/me/rnn-book"
    )
    assert (
        'BOOK_REPOSITORY = "https://github.com/me/rnn-book"'
        in bootstrap.cell_source("https://github.com/me/rnn-book")
    )


def test_write_repository_keeps_the_pair_in_sync(tmp_path):
    for suffix in (".ipynb", ".py"):
        shutil.copy(
            bootstrap.chapter_notebooks()[0].with_suffix(suffix),
            tmp_path / f"01_copy{suffix}",
        )
    notebook = tmp_path / "01_copy.ipynb"
    assert bootstrap.write_repository(notebook, "file:///somewhere/book.git")
    assert 'BOOK_REPOSITORY = "file:///somewhere/book.git"' in notebook.with_suffix(
        ".py"
    ).read_text(encoding="utf-8")
    # second time: unchanged
    assert not bootstrap.write_repository(notebook, "file:///somewhere/book.git")


PLATFORM_WITH_KERAS_2 = {
    "tensorflow": "2.15.0",
    "keras": "2.15.0",
    "numpy": "1.26.4",
    "matplotlib": "3.8.0",
}


def test_missing_requirements_are_only_what_the_platform_lacks():
    specs = bootstrap.missing_requirements(
        installed_version=PLATFORM_WITH_KERAS_2.get,
        importable=lambda name: name != "babel",
    )
    pins = bootstrap.pinned_versions()
    # TensorFlow and Keras older than the book is tested with, and babel and chapter 6's sacrebleu and
    # sentencepiece, which the platform lacks; its NumPy and Matplotlib stay
    assert specs == [
        f"{name}=={pins[name]}"
        for name in ("tensorflow", "keras", "babel", "sacrebleu", "sentencepiece")
    ]
    everything = dict(
        PLATFORM_WITH_KERAS_2,
        tensorflow="2.20.0",
        keras="3.14.0",
        babel="2.10.0",
        sacrebleu="2.4.0",
        sentencepiece="0.2.0",
    )
    assert (
        bootstrap.missing_requirements(
            installed_version=everything.get, importable=lambda name: True
        )
        == []
    )


def test_too_old_versions_stop_with_a_message_naming_found_and_needed():
    with pytest.raises(SystemExit) as stopped:
        bootstrap.require_versions({"tensorflow": "2.21.0", "keras": "3.8.0"}.get)
    message = str(stopped.value)
    assert (
        "keras 3.8.0" in message
        and "3.14 or newer" in message
        and "tensorflow" not in message.split("\n")[0]
    )
    assert (
        f"pip install keras=={bootstrap.pinned_versions()['keras']}" in message
        and "restart the kernel" in message
    )
    # the oldest tested: accepted
    bootstrap.require_versions({"tensorflow": "2.20.0", "keras": "3.14.0"}.get)
    bootstrap.require_versions()  # this Python: accepted
    assert (
        bootstrap.version_tuple("2.20.0rc1") == (2, 20, 0)
        and bootstrap.version_tuple("nightly") == ()
    )


def test_install_missing_calls_pip_with_the_missing_specs_only(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(
        bootstrap, "missing_requirements", lambda requirements: ["babel==2.18.0"]
    )
    assert bootstrap.install_missing(
        run=lambda command, check: calls.append(command)
    ) == ["babel==2.18.0"]
    assert calls == [
        [sys.executable, "-m", "pip", "install", "--quiet", "babel==2.18.0"]
    ]
    monkeypatch.setattr(bootstrap, "missing_requirements", lambda requirements: [])
    assert (
        bootstrap.install_missing(run=lambda command, check: calls.append(command))
        == []
    )
    assert len(calls) == 1 and "nothing to install" in capsys.readouterr().out


def run_cell(cwd, source=None):
    """Run the bootstrap cell as a kernel would (in `cwd`, nothing of the book on sys.path)."""
    source = bootstrap.cell_source("") if source is None else source
    program = (
        source + "\nprint('BOOK_ROOT', book_root)\nimport utils.data\nprint('UTILS',"
        " utils.data.DATA_DIR)\n"
    )
    return subprocess.run(
        [sys.executable, "-I", "-c", program],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def unpacked_book(tmp_path):
    """A copy of utils/ and data/ in folders as a zip of the book unpacks them (no .git)."""
    book = tmp_path / "rnn-book-main"
    shutil.copytree(
        ROOT / "utils", book / "utils", ignore=shutil.ignore_patterns("__pycache__")
    )
    (book / "chapters" / "notes" / "week 1").mkdir(parents=True)
    return book


@pytest.mark.parametrize("start", [".", "chapters", "chapters/notes/week 1"])
def test_cell_finds_the_book_from_any_folder_inside_it(unpacked_book, start):
    result = run_cell(unpacked_book / start)
    assert result.returncode == 0, result.stderr
    assert f"BOOK_ROOT {unpacked_book.resolve()}" in result.stdout
    assert f"UTILS {unpacked_book.resolve() / 'data'}" in result.stdout
    assert "install" not in result.stdout, "inside the book the cell installs nothing"


def test_cell_on_its_own_without_repository_says_what_to_do(tmp_path):
    result = run_cell(tmp_path)
    assert result.returncode != 0
    assert (
        "open the notebook inside the book" in result.stderr
        and "Colab and Kaggle" in result.stderr
    )
