"""Start JupyterLab the way `make lab` does, on a free local port, for a bounded time (stdlib only).

Used by the reading-path tests: tests/lab/test_lab_server.py (the contents API, in .venv) and
tests/lab/test_lab_in_browser.py (headless Chromium, in .venv-site). The server always comes from
the book's .venv, with the options of LAB_OPTIONS in the Makefile.
"""

import contextlib
import json
import os
import secrets
import shlex
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.makefile_vars import makefile_variable

ROOT = Path(__file__).resolve().parents[2]
JUPYTER = ROOT / ".venv" / "bin" / "jupyter"
LOGS = ROOT / "build" / "lab_logs"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Lab:
    """A running server: its base URL and token, and JSON calls to its REST API."""

    def __init__(self, url, token):
        self.url, self.token = url, token

    def api(self, path, method="GET", body=None, **query):
        address = f"{self.url}/api/{urllib.parse.quote(path)}"
        if query:
            address += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            address,
            data=data,
            method=method,
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def notebook(self, path):
        """The notebook model JupyterLab opens for `path` (a .py opens as a notebook, through jupytext)."""
        return self.api(f"contents/{path}", type="notebook", content=1)["content"]


def lab_command(root_dir=None, port=None, token="", workspaces_dir=None):
    """The `make lab` command line, with another served folder if given, and no browser.

    `workspaces_dir` keeps JupyterLab's saved layouts (which tabs were open) out of the user's own,
    so that every test meets the first screen a new reader meets."""
    options = shlex.split(makefile_variable("LAB_OPTIONS"))
    if root_dir is not None:
        options = [o for o in options if not o.startswith("--notebook-dir")] + [
            f"--notebook-dir={root_dir}"
        ]
    command = [
        str(JUPYTER),
        "lab",
        *options,
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
    ]
    if workspaces_dir is not None:
        command.append(f"--LabApp.workspaces_dir={workspaces_dir}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


@contextlib.contextmanager
def running_lab(root_dir=None, start_timeout=90):
    """Yield a Lab serving `root_dir` (default: the book's chapters/, as `make lab`); stop it afterwards."""
    if not JUPYTER.exists():
        raise RuntimeError(
            f"{JUPYTER} is missing: run `make lab` or `make test` once to create .venv"
        )
    port, token = free_port(), secrets.token_hex(16)
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"lab_{port}.log"
    workspaces = tempfile.TemporaryDirectory(prefix="lab-workspaces-")
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            lab_command(root_dir, port, token, workspaces.name),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    lab = Lab(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if server.poll() is not None:
                log = log_path.read_text(encoding="utf-8")
                raise RuntimeError(
                    f"JupyterLab stopped at start (exit {server.returncode}):\n{log}"
                )
            try:
                lab.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    message = (
                        f"JupyterLab did not answer in {start_timeout}"
                        f" s:\n{log_path.read_text(encoding='utf-8')}"
                    )
                    raise RuntimeError(message) from None
                time.sleep(0.5)
        yield lab
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        workspaces.cleanup()
