"""The chapters' GPU paths, checked without a GPU (see tests/gpu_branches.py for how).

- Every assert that reads a clock is guarded by the device, except the few listed below, which
  claim only an order that the prose argues for any hardware.
- Code that only a GPU runs reads no name that the chapter never binds, and every module attribute it
  uses exists in the installed TensorFlow and Keras.
- The GPU-only code that needs no cuDNN runs on the CPU with `gpu_available` patched to True and
  Keras choosing XLA as it does on a GPU, and every such branch is entered.
- `make test-gpu` makes the GPU visible and shares it; its summary names each chapter's device.
"""

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import gpu_branches

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))

# Timing asserts that run on every device (the whole assert, as ast.unparse writes it), with the reason
# the prose gives. Any change to one of them, its bound included, needs a new look at this list.
DEVICE_INDEPENDENT = {
    (
        "02_bptt.py",
        (
            "assert paired_ratio(step_times, (512, 25), (32, 400)) < 0.9, "
            "'the same arithmetic costs more as steps than as sequences'"
        ),
    ): (
        "a wider batch is one wider product per step, more steps are more products one"
        " after another; a GPU runs the wide product at least as well as a CPU"
    ),
    (
        "11_linear_recurrences.py",
        (
            "assert scan_over_loop['narrow'] < 0.5, \"little work per step: the scan's"
            ' depth wins, even on a CPU"'
        ),
    ): "NumPy: runs on the CPU whatever device TensorFlow has",
    (
        "11_linear_recurrences.py",
        (
            "assert scan_over_loop['wide'] > 1, \"much work per step: the scan's extra"
            ' work loses"'
        ),
    ): "NumPy: runs on the CPU whatever device TensorFlow has",
}
# Where the GPU-only code is: run on the CPU by the dry run, or (needing cuDNN) checked statically only.
DRY_RUN_CHAPTERS = {
    "02_bptt.py",
    "07_transformer.py",
    "08_choosing_a_model.py",
    "06_translation.py",
    "11_linear_recurrences.py",
    "10_production.py",
}
CUDNN_ONLY_CHAPTERS = {"04_bidirectional.py", "08_choosing_a_model.py"}


def _write_chapter(tmp_path, code):
    path = tmp_path / "99_demo.py"
    path.write_text("# %%\n" + textwrap.dedent(code), encoding="utf-8")
    return path


def test_the_checker_flags_an_unguarded_timing_assert(tmp_path):
    path = _write_chapter(
        tmp_path,
        """\
        times = interleaved_seconds(steps)
        growth = paired_ratio(times, "long", "short")
        for name, values in times.items():
            ratio = values[0]
        assert growth > 2, "grows"
        assert ratio > 0
        if not gpu_available():
            assert growth > 3, "grows fast on a CPU"
        assert accuracy > 0.9
        """,
    )
    found = gpu_branches.timing_asserts(path)
    assert [(line, guarded) for _, line, guarded, _ in found] == [
        (5, False),
        (6, False),
        (8, True),
    ]


def test_the_checker_follows_timing_functions(tmp_path):
    path = _write_chapter(
        tmp_path,
        """\
        def time_it(step):
            return median_seconds(step)
        if gpu_available():
            fast, slow = time_it(a), time_it(b)
            assert slow > 2 * fast
        """,
    )
    assert [
        (line, guarded) for _, line, guarded, _ in gpu_branches.timing_asserts(path)
    ] == [(5, True)]


def test_the_checker_follows_containers_modules_and_functions(tmp_path):
    path = _write_chapter(
        tmp_path,
        """\
        import utils.measure
        from utils.measure import median_seconds as clock
        results, log = {}, []
        results["lstm"] = utils.measure.median_seconds(step)
        log.append(clock(step))
        def slowdown():
            return results["lstm"] / 2
        assert results["lstm"] > 0
        assert log[0] > 0
        assert slowdown() > 1
        def check():
            assert results["lstm"] < 9
        import numpy as np
        more = np.append(log, 1.0)
        assert np.all(np.arange(3) >= 0)
        """,
    )
    assert [line for _, line, _, _ in gpu_branches.timing_asserts(path)] == [
        8,
        9,
        10,
        12,
    ]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_timing_asserts_are_guarded_by_the_device(source):
    unguarded = []
    for cell, line, guarded, text in gpu_branches.timing_asserts(source):
        if not guarded and (source.name, text) not in DEVICE_INDEPENDENT:
            unguarded.append(f"cell {cell}, line {line}: {text}")
    assert not unguarded, (
        "a law measured on CPUs need not hold on a GPU: put these under `if not"
        " gpu_available():` and assert on a GPU only the order the prose claims:\n"
        + "\n".join(unguarded)
    )


def test_the_book_has_timing_asserts_to_check():
    found = [item for source in SOURCES for item in gpu_branches.timing_asserts(source)]
    assert len(found) >= 15, "the checker no longer finds the chapters' timing asserts"
    found_keys = {
        (source.name, text)
        for source in SOURCES
        for _, _, _, text in gpu_branches.timing_asserts(source)
    }
    assert set(DEVICE_INDEPENDENT) <= found_keys, (
        f"stale in DEVICE_INDEPENDENT: {set(DEVICE_INDEPENDENT) - found_keys}"
    )


def test_every_gpu_only_branch_is_run_or_known_to_need_cudnn():
    run, cudnn_only = set(), set()
    for source in SOURCES:
        for _, _, text in gpu_branches.code_cells(source):
            tree = ast.parse(text)
            if gpu_branches.gpu_only_code(tree):
                (cudnn_only if gpu_branches.needs_cudnn(tree) else run).add(source.name)
    assert run == DRY_RUN_CHAPTERS and cudnn_only == CUDNN_ONLY_CHAPTERS
    assert {source.name for source in DRY_RUN_SOURCES} == DRY_RUN_CHAPTERS


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_gpu_only_code_reads_only_bound_names(source):
    assert not gpu_branches.unresolved_gpu_names(source), (
        "GPU-only code reads names that nothing binds"
    )


def test_unresolved_names_are_found(tmp_path):
    path = _write_chapter(
        tmp_path,
        """\
        import numpy as np
        if gpu_available():
            print(np.zeros(3), undefined_name)
        """,
    )
    assert gpu_branches.unresolved_gpu_names(path) == [(0, "undefined_name")]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_gpu_only_code_uses_attributes_that_exist(source):
    missing = []
    for cell, dotted, module_path in gpu_branches.module_attribute_chains(source):
        # `from keras import layers` binds an attribute, not a module
        try:
            target = importlib.import_module(module_path)
        except ImportError:
            parent, _, name = module_path.rpartition(".")
            target = getattr(importlib.import_module(parent), name)
        for part in dotted.split(".")[1:]:
            if not hasattr(target, part):
                missing.append(f"cell {cell}: {dotted}")
                break
            target = getattr(target, part)
    assert not missing, (
        "GPU-only code uses attributes that do not exist:\n" + "\n".join(missing)
    )


DRY_RUN_SOURCES = [source for source in SOURCES if gpu_branches.dry_run_plan(source)[1]]


def test_gpu_branches_run_on_the_cpu_with_gpu_available_patched():
    """One dry run per chapter, side by side (each on one thread); about a minute and a half on two cores."""
    environment = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "Agg",
        "TF_NUM_INTRAOP_THREADS": "1",
    }
    runs = {
        source.name: subprocess.Popen(
            [sys.executable, "-m", "tests.gpu_branches", str(source)],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in DRY_RUN_SOURCES
    }
    for name, run in runs.items():
        stdout, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, f"{name}: {stderr[-3000:]}"
        report = json.loads(stdout.strip().splitlines()[-1])
        assert report["branches"], f"{name}: no GPU-only branch in the cells run"
        assert report["entered"] == report["branches"], (
            f"{name}: GPU-only branches not entered: {report}"
        )
        assert report["asserts_evaluated"] > 0, f"{name}: {report}"


def test_keras_picks_xla_as_on_a_gpu_in_the_simulation():
    code = (
        "import keras; models = [keras.Sequential([keras.Input((5, 3)), layer]) for"
        " layer in [keras.layers.Dense(1), keras.layers.LSTM(2), keras.layers.GRU(2,"
        " activation='relu')]]; [model.compile(loss='mse') for model in models];"
        " print(*[model.jit_compile for model in models])"
    )
    environment = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(ROOT / "tests" / "xla_as_on_gpu"),
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Dense: XLA; an LSTM that cuDNN can run: no XLA; a GRU that cuDNN cannot run (relu): XLA
    assert result.stdout.split() == ["True", "False", "True"], result.stderr[-2000:]


@pytest.mark.skipif(
    shutil.which("make") is None or os.name == "nt",
    reason="needs make and a POSIX shell",
)
def test_make_test_gpu_shows_the_gpu_and_shares_it():
    dry = subprocess.run(
        ["make", "-n", "-B", "test-gpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pytest_line = next(line for line in dry.splitlines() if "-m pytest" in line)
    assert "CUDA_VISIBLE_DEVICES" not in pytest_line, (
        "make test-gpu must not hide the GPU"
    )
    assert (
        "TF_FORCE_GPU_ALLOW_GROWTH=true" in pytest_line and "--nbval-lax" in pytest_line
    )
    assert "-n 2 --dist loadscope" in pytest_line and "requirements-gpu.txt" in dry


def test_the_chapter_summary_names_each_notebooks_device(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                'print("TensorFlow 2.99 | Keras 3.99 | GPU (Fake A100) | TF32 off |'
                ' memory growth on | BOOK_SEED=7")  # stands in for setup_book()'
            )
        ]
    )
    path = tmp_path / "demo.ipynb"
    nbformat.write(notebook, path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:python",
            "-p",
            "tests.nbval_plugin",
            "--nbval-lax",
            "-n",
            "2",
            "-q",
            "-p",
            "no:cacheprovider",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (
        "demo.ipynb  (GPU (Fake A100) | TF32 off | memory growth on | BOOK_SEED=7)"
        in result.stdout
    ), result.stdout


def test_setup_details_reads_the_setup_line():
    from tests.nbval_plugin import setup_details

    outputs = [
        {
            "output_type": "stream",
            "text": [
                "noise\n",
                (
                    "TensorFlow 2.21.0 | Keras 3.15.1 | CPU (2 cores) | "
                    "TF32 off | BOOK_SEED=42\n"
                ),
            ],
        }
    ]
    assert setup_details(outputs) == "CPU (2 cores) | TF32 off | BOOK_SEED=42"
    assert setup_details([{"output_type": "stream", "text": "other\n"}]) is None
