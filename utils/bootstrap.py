"""How a chapter finds the book's helpers, wherever Jupyter runs it.

Each chapter starts with the same short cell (tagged `bootstrap`, text below): it looks for this
file in the notebook's folder and the folders above it, and puts the folder that holds `utils/` first
on `sys.path`. That works in a git checkout, an unpacked zip of the book, the student edition in
build/student, JupyterLab, VS Code and nbval alike, with no `.pth` file and nothing installed into
site-packages under the name `utils` (where it would collide with other projects' `utils`).

Why a cell and not an installation: a `.pth` file exists only where `make` wrote it (plain pip, conda,
VS Code, a JupyterHub and Colab never get one); `pip install -e .` would either put a package named
`utils` into site-packages or need the helpers renamed into a package every reader must install
first, which a notebook opened alone on Colab does not have; PYTHONPATH and IPython startup files live
in one shell or one user's profile. A cell travels with the notebook and needs nothing beforehand.

A notebook on its own (opened on Colab or Kaggle from GitHub, or copied out of the book) finds no
`utils/`: the cell then clones the book's repository beside the notebook and calls `install_missing`,
which installs only the packages the platform lacks, at the versions of requirements.txt.

The repository URL is set in one place, `[project.urls] Repository` in pyproject.toml; this module
writes it into every chapter's cell:

    python -m utils.bootstrap            # rewrite the bootstrap cell of every chapter (.ipynb and .py)
    python -m utils.bootstrap --check    # exit 1 if a chapter's cell differs from the template (or is not collapsed)
"""

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = "bootstrap"
# The cell is plumbing: JupyterLab shows it collapsed (a click opens it) and the website leaves it out
# (site/stage.py tags it remove-cell); it runs everywhere.
HIDDEN = {"source_hidden": True}
CLONE_FOLDER = "rnn-book"

CELL_TEMPLATE = """\
# Finds the book's helpers (utils/) and data/ in the folders above this notebook. A notebook on its own
# (Colab, Kaggle) first fetches the book from BOOK_REPOSITORY, set with `python -m utils.bootstrap`.
import pathlib
import subprocess
import sys

BOOK_REPOSITORY = {repository}
here = pathlib.Path.cwd().resolve()
marker = pathlib.Path("utils", "bootstrap.py")
book_root = next(
    (p for p in (here, *here.parents) if (p / marker).is_file()), here / {clone_folder}
)
if not (book_root / marker).is_file():
    if not BOOK_REPOSITORY:
        raise RuntimeError(
            f"no utils/ in {{here}} or above it, and no BOOK_REPOSITORY to fetch the book"
            " from: open the notebook inside the book, or see 'Colab and Kaggle' in"
            " the README"
        )
    print(
        f"fetching the book from {{BOOK_REPOSITORY}} into {{book_root}} (on Kaggle:"
        " Settings, Internet on)"
    )
    subprocess.run(
        ["git", "clone", "--quiet", "--depth=1", BOOK_REPOSITORY, str(book_root)],
        check=True,
    )
if str(book_root) not in sys.path:
    sys.path.insert(0, str(book_root))
if book_root == here / {clone_folder}:
    from utils.bootstrap import install_missing

    install_missing()"""

# What the chapters import at run time: (import name, distribution name). The rest of
# requirements.txt (Jupyter, jupytext, pytest, ruff) is for working on the book, not for reading it.
RUNTIME_PACKAGES = [
    ("tensorflow", "tensorflow"),
    ("keras", "keras"),
    ("numpy", "numpy"),
    ("matplotlib", "matplotlib"),
    ("babel", "babel"),
    ("sacrebleu", "sacrebleu"),
    ("sentencepiece", "sentencepiece"),
]
# The oldest releases the chapters are tested with (`make test-versions`, tests/versions.py); older ones
# are replaced by the pins where the bootstrap cell installs, and refused with a message elsewhere.
# Keras 3.12 and 3.13 fail chapter 11 (keras.ops.associative_scan recurses without end on TensorFlow).
MINIMUM_VERSIONS = {"tensorflow": "2.20", "keras": "3.14"}


class UnsupportedVersions(SystemExit):
    """Raised when TensorFlow or Keras is older than the book is tested with. A SystemExit, so that
    Jupyter shows the message alone instead of a traceback through the library's internals.
    """


def version_tuple(version):
    """'2.20.0rc1' -> (2, 20, 0): the leading numbers of a version string."""
    leading = re.match(r"\d+(\.\d+)*", version)
    return (
        tuple(int(number) for number in leading.group().split(".")) if leading else ()
    )


def too_old(distribution, version):
    minimum = MINIMUM_VERSIONS.get(distribution)
    return minimum is not None and version_tuple(version) < version_tuple(minimum)


def require_versions(installed_version=None):
    """Stop with one clear message when TensorFlow or Keras is older than MINIMUM_VERSIONS."""
    installed_version = installed_version or _installed_version
    found = {
        distribution: installed_version(distribution)
        for distribution in MINIMUM_VERSIONS
    }
    old = {
        name: version
        for name, version in found.items()
        if version and too_old(name, version)
    }
    if old:
        pins = pinned_versions()
        needed = ", ".join(
            f"{name} {version} (the book needs {MINIMUM_VERSIONS[name]} or newer)"
            for name, version in old.items()
        )
        install = " ".join(f"{name}=={pins[name]}" for name in old)
        raise UnsupportedVersions(
            f"This Python has {needed}. Install the book's versions with\n    python -m"
            f" pip install {install}\n(in a notebook: %pip install {install}), then"
            " restart the kernel."
        )


def configured_repository(pyproject=ROOT / "pyproject.toml"):
    """The book's repository URL from pyproject.toml's [project.urls] Repository, or "" when unset."""
    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8")).get(
        "project", {}
    )
    return project.get("urls", {}).get("Repository", "").strip()


def cell_source(repository):
    return CELL_TEMPLATE.format(
        repository=json.dumps(repository), clone_folder=json.dumps(CLONE_FOLDER)
    )


def pinned_versions(requirements=ROOT / "requirements.txt"):
    """{distribution name: version} for the `name==version` lines of a requirements file."""
    pins = {}
    for line in Path(requirements).read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.split("[")[0].strip().lower()] = version.strip()
    return pins


def _installed_version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_requirements(
    requirements=ROOT / "requirements.txt",
    installed_version=_installed_version,
    importable=lambda name: importlib.util.find_spec(name) is not None,
):
    """The `name==version` specs to install so that the chapters run: the runtime packages that are
    absent, or older than MINIMUM_VERSIONS (Keras 2, say). Packages the platform has are kept as they are.
    """
    pins = pinned_versions(requirements)
    specs = []
    for module, distribution in RUNTIME_PACKAGES:
        version = installed_version(distribution) if importable(module) else None
        if version is None or too_old(distribution, version):
            specs.append(f"{distribution}=={pins[distribution]}")
    return specs


def install_missing(requirements=ROOT / "requirements.txt", run=subprocess.run):
    """Install what `missing_requirements` lists with pip, print what it did, and return the specs."""
    specs = missing_requirements(requirements)
    if specs:
        print("installing what this Python lacks:", " ".join(specs))
        run([sys.executable, "-m", "pip", "install", "--quiet", *specs], check=True)
    else:
        print("this Python has every package the chapters import: nothing to install")
    return specs


def chapter_notebooks(chapters_dir=ROOT / "chapters"):
    return sorted(Path(chapters_dir).glob("[0-9][0-9]_*.ipynb"))


def bootstrap_cells(notebook):
    """The code cells of a notebook (a dict as json loads it) tagged `bootstrap`."""
    return [
        c
        for c in notebook["cells"]
        if c["cell_type"] == "code" and TAG in c.get("metadata", {}).get("tags", [])
    ]


def write_repository(notebook_path, repository, pair=True):
    """Set the bootstrap cell of one notebook to the template with `repository`; with `pair`, render
    the jupytext .py beside it again. Returns True when the notebook changed."""
    import jupytext  # only for working on the book: not needed where the chapters are read
    import nbformat

    path = Path(notebook_path)
    notebook = nbformat.read(path, as_version=4)
    cells = bootstrap_cells(notebook)
    if len(cells) != 1:
        raise ValueError(
            f"{path}: expected one code cell tagged {TAG!r}, found {len(cells)}"
        )
    source = cell_source(repository)
    changed = (
        "".join(cells[0]["source"]) != source
        or cells[0]["metadata"].get("jupyter") != HIDDEN
    )
    cells[0]["source"] = source
    cells[0]["metadata"]["jupyter"] = dict(HIDDEN)
    nbformat.write(notebook, path)
    if pair:
        path.with_suffix(".py").write_text(
            jupytext.writes(jupytext.read(path), fmt="py:percent"), encoding="utf-8"
        )
    return changed


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a chapter's cell is not the template",
    )
    parser.add_argument(
        "--repository",
        help="URL to write instead of pyproject.toml's (for a copy of a notebook)",
    )
    parser.add_argument(
        "notebooks", nargs="*", help="notebooks to rewrite (default: every chapter)"
    )
    args = parser.parse_args(argv)
    repository = configured_repository() if args.repository is None else args.repository
    notebooks = [Path(p) for p in args.notebooks] or chapter_notebooks()
    if args.check:
        expected = [(cell_source(repository), HIDDEN)]
        stale = [
            p.name
            for p in notebooks
            if [
                ("".join(c["source"]), c["metadata"].get("jupyter"))
                for c in bootstrap_cells(json.loads(p.read_text(encoding="utf-8")))
            ]
            != expected
        ]
        if stale:
            raise SystemExit(
                "bootstrap cell (text, or collapsed state) differs from"
                f" utils/bootstrap.py in {', '.join(stale)}: run python -m"
                " utils.bootstrap"
            )
        return
    for path in notebooks:
        changed = write_repository(
            path, repository, pair=path.with_suffix(".py").exists()
        )
        print(
            f"{path}: {'updated' if changed else 'unchanged'} (BOOK_REPOSITORY ="
            f" {json.dumps(repository)})"
        )


if __name__ == "__main__":
    main()
