"""Tidy executed notebooks before they are stored (used by `make outputs`).

TensorFlow's C++ start-up messages reach stderr and differ between machines; nbval never
compares stderr, and the stored notebooks read better without them.
"""

import sys

import nbformat


def drop_stderr(notebook):
    """Remove every stderr stream output from a notebook node, in place; return how many went."""
    removed = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = [
            o
            for o in cell.outputs
            if not (o.output_type == "stream" and o.name == "stderr")
        ]
        removed += len(cell.outputs) - len(kept)
        cell.outputs = kept
    return removed


def main(paths):
    if not paths:
        raise SystemExit("usage: python -m utils.notebooks NOTEBOOK.ipynb ...")
    for path in paths:
        if not path.endswith(".ipynb"):
            raise SystemExit(f"{path} is not an .ipynb file")
        notebook = nbformat.read(path, as_version=4)
        removed = drop_stderr(notebook)
        nbformat.write(notebook, path)
        print(f"{path}: {removed} stderr output(s) removed")


if __name__ == "__main__":
    main(sys.argv[1:])
