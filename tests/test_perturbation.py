"""`make test` runs the chapters in another numeric environment than `make outputs` wrote them in.

That check is worth something only if the perturbation really changes results on this machine, so
here each part of PERTURBED_ENV, alone, trains the same tiny models as the environment of
`make outputs` and must change some of their weights (in the low-order bits only: the weights
still agree to 1e-3).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.makefile_vars import MAKEFILE, makefile_env

# what `make outputs` runs in
REFERENCE = {**makefile_env("CPU_ENV"), **makefile_env("OUTPUTS_ENV")}
PERTURBED = makefile_env("PERTURBED_ENV")


def probed(tmp_path, extra_env):
    out = tmp_path / f"weights_{len(list(tmp_path.iterdir()))}.npz"
    env = {**os.environ, **REFERENCE, **extra_env}
    subprocess.run(
        [sys.executable, "-m", "tests.perturbation", str(out)],
        cwd=MAKEFILE.parent,
        env=env,
        check=True,
        capture_output=True,
    )
    return dict(np.load(out))


def test_environments_are_parsed():
    assert (
        REFERENCE["TF_NUM_INTRAOP_THREADS"] == "2"
        and REFERENCE["PYTHONHASHSEED"] == "0"
    )
    assert set(PERTURBED) == {"ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS"}
    assert PERTURBED["TF_NUM_INTRAOP_THREADS"] != REFERENCE["TF_NUM_INTRAOP_THREADS"]


def test_makefile_env_reports_a_missing_line(tmp_path):
    (tmp_path / "Makefile").write_text("A := X=1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no line"):
        makefile_env("B", tmp_path / "Makefile")


def test_each_perturbation_changes_low_order_bits(tmp_path):
    reference = probed(tmp_path, {})
    again = probed(tmp_path, {})
    assert all(np.array_equal(reference[kind], again[kind]) for kind in reference), (
        "the reference is not repeatable"
    )
    changed_by = {}
    for name, value in PERTURBED.items():
        perturbed = probed(tmp_path, {name: value})
        changed_by[name] = [
            kind
            for kind in reference
            if not np.array_equal(reference[kind], perturbed[kind])
        ]
        for kind in reference:
            assert np.allclose(
                reference[kind], perturbed[kind], rtol=1e-3, atol=1e-3
            ), f"{name}={value} changed {kind}"
    assert all(changed_by.values()), (
        f"a perturbation changed nothing here: {changed_by}"
    )
