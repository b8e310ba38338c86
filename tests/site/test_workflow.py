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
        pytest.fail(
            "check-jsonschema is missing: it is pinned in requirements-site.txt"
        )
    command = str(CHECK_JSONSCHEMA) if CHECK_JSONSCHEMA.exists() else "check-jsonschema"
    result = subprocess.run(
        [command, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_can_fail(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text(encoding="utf-8").replace("runs-on:", "runs_on:"),
        encoding="utf-8",
    )
    command = str(CHECK_JSONSCHEMA) if CHECK_JSONSCHEMA.exists() else "check-jsonschema"
    result = subprocess.run(
        [command, "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0


def test_the_workflow_runs_make_test_like_ci():
    from ruamel.yaml import YAML

    workflow = YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))
    job = workflow["jobs"]["test"]
    assert job["env"]["CI"] == "true", "a missing browser must fail, not skip"
    assert any(step.get("run") == "make test" for step in job["steps"])
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci_run, ".ci/run and the workflow run the same command"


def readme_block(language):
    section = (
        (ROOT / "README.md")
        .read_text(encoding="utf-8")
        .split("## Without make", 1)[1]
        .split("\n## ", 1)[0]
    )
    return (
        section.split(f"```{language}\n", 1)[1].split("```", 1)[0].strip().splitlines()
    )


def workflow():
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))


def test_the_platform_jobs_run_the_readme_route_on_each_platform_and_every_shard():
    job = workflow()["jobs"]["platforms"]
    matrix = job["strategy"]["matrix"]["include"]
    platforms = {(entry["os"], entry["python"]) for entry in matrix}
    assert platforms == {
        ("macos-14", "3.12"),
        ("windows-latest", "3.12"),
        ("ubuntu-latest", "3.13"),
    }
    for os_name, python in platforms:
        shards = sorted(
            entry["shard"]
            for entry in matrix
            if (entry["os"], entry["python"]) == (os_name, python)
        )
        count = len(shards)
        assert shards == [f"{k}/{count}" for k in range(1, count + 1)], (
            f"{os_name}: shards {shards}"
        )
    steps = {
        step.get("shell"): step["run"].strip().splitlines()
        for step in job["steps"]
        if "run" in step
    }
    for shell, language in (("bash", "bash"), ("pwsh", "powershell")):
        readme = [
            line
            for line in readme_block(language)
            if not line.startswith("jupyter lab")
        ]
        run = [
            line.replace("py -${{ matrix.python }} -m venv", "py -m venv")
            for line in steps[shell]
        ]
        installing = [
            line for line in run if not line.startswith(("if ", "python -m tests"))
        ]
        assert installing == readme[:-1], (
            f"the {shell} step is not the README's {language} route"
        )
        assert run[-1] == "python -m tests chapters --lax --shard ${{ matrix.shard }}"
        assert any("python -m tests unit" in line for line in run), (
            "the first shard runs the unit tests"
        )


def test_the_newest_releases_are_tried_weekly():
    parsed = workflow()
    on = parsed.get("on", parsed.get(True))  # YAML 1.1 reads the key `on` as True
    assert on["schedule"][0]["cron"].split()[4] == "1", "weekly, on Mondays"
    job = parsed["jobs"]["newest"]
    run = job["steps"][-1]["run"]
    assert "pip install --upgrade tensorflow keras" in run and "--lax" in run
    assert "schedule" in job["if"] and "schedule" in parsed["jobs"]["test"]["if"]
