"""utils/distributed.py: the loop's settings and data order, the ports, and workers that never outlive their kernel."""

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from utils import distributed

ROOT = Path(__file__).resolve().parent.parent
GOOD = dict(global_batch=8, epochs=2, learning_rate=0.1, shuffle_seed=0)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(epochs=0), "epochs must be a positive"),
        (dict(global_batch=2.5), "global_batch must be a positive"),
        (dict(learning_rate=0), "learning_rate must be positive"),
    ],
)
def test_bad_settings_are_refused_with_a_message(change, message):
    with pytest.raises(ValueError, match=message):
        distributed.check_settings(GOOD | change)


def test_missing_settings_are_named():
    with pytest.raises(ValueError, match="lack shuffle_seed"):
        distributed.check_settings(
            {name: GOOD[name] for name in ("global_batch", "epochs", "learning_rate")}
        )


def test_each_epoch_order_depends_on_the_epoch_alone():
    x, y = np.arange(20, dtype="float32")[:, None], np.zeros((20, 1), "float32")
    first = [
        b[0].numpy().ravel().tolist()
        for b in distributed.epoch_dataset(x, y, 8, epoch=3, shuffle_seed=1)
    ]
    again = [
        b[0].numpy().ravel().tolist()
        for b in distributed.epoch_dataset(x, y, 8, epoch=3, shuffle_seed=1)
    ]
    other = [
        b[0].numpy().ravel().tolist()
        for b in distributed.epoch_dataset(x, y, 8, epoch=4, shuffle_seed=1)
    ]
    assert first == again and first != other
    assert [len(batch) for batch in first] == [8, 8], (
        "full batches only: the last 4 examples wait"
    )


def test_free_ports_are_distinct():
    ports = distributed.free_ports(3)
    assert len(set(ports)) == 3 and all(0 < port < 65536 for port in ports)


def test_short_message_keeps_both_ends():
    error = ValueError("start " + "x" * 500 + " end")
    message = distributed.short_message(error, length=40)
    assert (
        message.startswith("start") and message.endswith("end") and len(message) <= 45
    )


def test_run_workers_refuses_no_workers(tmp_path):
    with pytest.raises(ValueError, match="num_workers"):
        distributed.run_workers(tmp_path, num_workers=0)


@pytest.mark.skipif(
    sys.platform != "linux", reason="finds processes through psutil's view of Linux"
)
def test_workers_leave_when_the_kernel_is_killed_mid_cell(tmp_path):
    psutil = pytest.importorskip("psutil")
    jupyter_client = pytest.importorskip("jupyter_client")
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(
        cwd=str(tmp_path),
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
    )
    try:
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        job = tmp_path / "job"
        client.execute(
            textwrap.dedent(f"""
            import sys; sys.path.insert(0, {str(ROOT)!r})
            import keras, numpy as np
            from utils import distributed
            model = keras.Sequential([keras.Input((5, 2)), keras.layers.GRU(4), keras.layers.Dense(1)])
            x, y = np.zeros((40_000, 5, 2), "float32"), np.zeros((40_000, 1), "float32")
            # 10,000 steps per epoch: the workers print nothing (and so never meet a closed pipe) for many seconds
            distributed.write_job({str(job)!r}, model, x, y, global_batch=4, epochs=100, learning_rate=0.01,
                                  shuffle_seed=0)
            distributed.run_workers({str(job)!r}, timeout=600)  # runs far longer than this test waits
        """)
        )
        kernel = psutil.Process(manager.provisioner.process.pid)
        deadline, workers = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            workers = [
                p
                for p in kernel.children(recursive=True)
                if "utils.distributed" in " ".join(p.cmdline())
            ]
            if len(workers) == 2:
                break
            time.sleep(0.2)
        assert len(workers) == 2, "the cell did not start its two workers"
        # the workers import TensorFlow, meet and start their first (long, silent) epoch
        time.sleep(3)
        # the kernel dies mid-cell: no finally runs in it
        os.kill(kernel.pid, signal.SIGKILL)
        alive = still_running(workers, seconds=5)
        assert not alive, f"workers outlived their kernel: {alive}"
    finally:
        for process in psutil.process_iter(["cmdline"]):
            if str(tmp_path) in " ".join(process.info["cmdline"] or []):
                process.kill()
        manager.shutdown_kernel(now=True)


def still_running(processes, seconds):
    """The pids among `processes` still running after `seconds` (a zombie has ended; it waits to be reaped)."""
    import psutil

    deadline = time.monotonic() + seconds
    while True:
        alive = []
        for process in processes:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process.pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.mark.skipif(
    sys.platform != "linux",
    reason="only Linux ends a process holding the GIL (PDEATHSIG)",
)
def test_a_worker_inside_a_long_c_call_still_leaves_with_its_parent(tmp_path):
    """A worker in a C call that holds the GIL (TensorFlow's import, a collective waiting for its peer; here a sum
    over a huge range) cannot run its watch thread; the kernel's parent-death signal ends it all the same.
    """
    psutil = pytest.importorskip("psutil")
    ready = tmp_path / "ready"
    worker = (
        "import os, pathlib, utils.distributed as d; d.watch_parent(0,"
        f" int(os.environ[d.WATCH_PARENT])); pathlib.Path({str(ready)!r}).touch();"
        " sum(range(10**13))"
    )
    parent = textwrap.dedent(f"""
        import os, subprocess, sys
        env = dict(os.environ, PYTHONPATH={str(ROOT)!r}, **{{{distributed.WATCH_PARENT!r}: str(os.getpid())}})
        worker = subprocess.Popen([sys.executable, "-c", {worker!r}], stdin=subprocess.PIPE, env=env)
        print(worker.pid, flush=True)
        worker.wait()
    """)
    import subprocess

    starter = subprocess.Popen(
        [sys.executable, "-c", parent],
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        worker = psutil.Process(int(starter.stdout.readline()))
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the worker did not start"
        time.sleep(0.5)  # well inside the sum now
        starter.kill()
        starter.wait()
        alive = still_running([worker], seconds=5)
        assert not alive, "a worker holding the GIL outlived its parent"
    finally:
        starter.kill()
        for process in psutil.process_iter(["cmdline"]):
            if str(ready) in " ".join(process.info["cmdline"] or []):
                process.kill()


def test_workers_address_each_other_on_the_loopback_interface_only(
    tmp_path, monkeypatch
):
    (tmp_path / "job.json").write_text(json.dumps(GOOD), encoding="utf-8")
    started = []

    class FinishedWorker:
        returncode, stdout = 0, iter(())

        def __init__(self, command, env, **options):
            assert env[distributed.WATCH_PARENT] == str(os.getpid()), (
                "workers started here watch their parent"
            )
            started.append(json.loads(env["TF_CONFIG"]))
            self.stdin = None

        def poll(self):
            return 0

        def wait(self):
            return 0

    monkeypatch.setattr(distributed.subprocess, "Popen", FinishedWorker)
    codes, lines = distributed.run_workers(tmp_path, num_workers=3)
    assert codes == [0, 0, 0] and lines == []
    assert [config["task"]["index"] for config in started] == [0, 1, 2]
    addresses = started[0]["cluster"]["worker"]
    assert len(set(addresses)) == 3 and all(
        address.startswith("127.0.0.1:") for address in addresses
    )
    assert all(config["cluster"] == started[0]["cluster"] for config in started)


def test_a_worker_started_without_run_workers_ignores_a_closed_stdin(tmp_path):
    """Under a cluster manager stdin is often /dev/null: the worker must not take that for a dead parent."""
    import subprocess

    config = {
        "cluster": {"worker": ["127.0.0.1:1"]},
        "task": {"type": "worker", "index": 0},
    }
    env = {**os.environ, "TF_CONFIG": json.dumps(config), "PYTHONPATH": str(ROOT)}
    env.pop(distributed.WATCH_PARENT, None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import utils.distributed as d, sys; sys.argv = ['x', 'NOJOB']; "
                "d.worker_main('NOJOB')"
            ),
        ],
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "has ended; leaving" not in result.stdout
    assert "NOJOB" in result.stderr, (
        "the worker went on to read its job (and found none)"
    )


def test_workers_start_again_on_new_ports_when_a_port_was_taken(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "job.json").write_text(json.dumps(GOOD), encoding="utf-8")
    clusters = []

    class Worker:
        def __init__(self, command, env, stderr, **options):
            clusters.append(json.loads(env["TF_CONFIG"])["cluster"])
            first_attempt = len(clusters) <= 2
            if first_attempt:
                stderr.write(f"UnknownError: {distributed.PORT_TAKEN}\n")
            self.returncode = 1 if first_attempt else 0
            self.stdout = iter(
                () if first_attempt else (f"worker {len(clusters) - 3}: done\n",)
            )
            self.stdin = None

        def poll(self):
            return self.returncode

        def wait(self):
            return self.returncode

    port_draws = iter([[1001, 1002], [1003, 1004]])
    monkeypatch.setattr(distributed, "free_ports", lambda count: next(port_draws))
    monkeypatch.setattr(distributed.subprocess, "Popen", Worker)
    codes, lines = distributed.run_workers(tmp_path)
    assert codes == [0, 0] and lines == ["worker 0: done", "worker 1: done"]
    first_ports = {"worker": ["127.0.0.1:1001", "127.0.0.1:1002"]}
    new_ports = {"worker": ["127.0.0.1:1003", "127.0.0.1:1004"]}
    assert clusters == [first_ports, first_ports, new_ports, new_ports]
    printed = capsys.readouterr().out
    assert "starting the workers again on new ports" in printed
    assert "worker 0: done" in printed


def test_workers_are_not_started_again_for_other_failures(tmp_path, monkeypatch):
    (tmp_path / "job.json").write_text(json.dumps(GOOD), encoding="utf-8")
    started = []

    class FailingWorker:
        returncode, stdout, stdin = 3, iter(()), None

        def __init__(self, command, env, stderr, **options):
            started.append(env["TF_CONFIG"])

        def poll(self):
            return 3

        def wait(self):
            return 3

    monkeypatch.setattr(distributed.subprocess, "Popen", FailingWorker)
    codes, _ = distributed.run_workers(tmp_path)
    assert codes == [3, 3] and len(started) == 2
