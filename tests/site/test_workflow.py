"""The GitHub Actions workflow is valid and runs what `.ci/run` runs (`make test`, with CI=true).

Validated against the GitHub workflow schema that check-jsonschema vendors (no network needed).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def test_the_workflow_matches_the_github_schema():
    if not CHECK_JSONSCHEMA.exists() and shutil.which("check-jsonschema") is None:
        pytest.fail("check-jsonschema is missing: it is pinned in requirements-site.txt")
    command = str(CHECK_JSONSCHEMA) if CHECK_JSONSCHEMA.exists() else "check-jsonschema"
    result = subprocess.run([command, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_can_fail(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    command = str(CHECK_JSONSCHEMA) if CHECK_JSONSCHEMA.exists() else "check-jsonschema"
    result = subprocess.run([command, "--builtin-schema", "vendor.github-workflows", str(broken)],
                            capture_output=True, text=True)
    assert result.returncode != 0


def test_the_workflow_runs_make_test_like_ci():
    from ruamel.yaml import YAML

    workflow = YAML(typ="safe").load(WORKFLOW.read_text())
    job = workflow["jobs"]["test"]
    assert job["env"]["CI"] == "true", "a missing browser must fail, not skip"
    assert any(step.get("run") == "make test" for step in job["steps"])
    assert "make test" in (ROOT / ".ci" / "run").read_text(), ".ci/run and the workflow run the same command"
