"""A custom training loop for any `tf.distribute` strategy, and worker processes that run it on one machine.

Chapter 10 trains the same model with the same loop under three strategies (one device, two logical
CPUs in the notebook, two worker processes) and checks that the weights agree. Worker processes need
their code in a file they can import: the loop lives here for that reason, and the chapter prints it.

    python -m utils.distributed JOB_DIR    (one worker; TF_CONFIG names the cluster and this worker)

JOB_DIR holds `model.keras` (the untrained model), `data.npz` (x, y) and `job.json` (the loop's
settings). Each worker writes its final weights to `JOB_DIR/worker-<index>.npz` and its checkpoints
to `JOB_DIR/checkpoints-<index>/`.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

SETTINGS = ("global_batch", "epochs", "learning_rate", "shuffle_seed")


def check_settings(settings):
    """Raise ValueError unless `settings` has the loop's settings with sensible values."""
    missing = [name for name in SETTINGS if name not in settings]
    if missing:
        raise ValueError(
            f"settings lack {', '.join(missing)}; they need {', '.join(SETTINGS)}"
        )
    for name in ("global_batch", "epochs"):
        value = settings[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if not settings["learning_rate"] > 0:
        raise ValueError(
            f"learning_rate must be positive, got {settings['learning_rate']!r}"
        )


def epoch_dataset(x, y, global_batch, epoch, shuffle_seed):
    """One epoch's batches: a shuffle fixed by (shuffle_seed, epoch), full batches of
    `global_batch` only.

    The order depends on the epoch number and nothing else, so a run restarted at epoch
    k sees the batches an uninterrupted run sees at epoch k."""
    import tensorflow as tf

    order = np.random.default_rng([shuffle_seed, epoch]).permutation(len(x))
    return tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(
        global_batch, drop_remainder=True
    )


def train_with_loop(
    strategy,
    model,
    x,
    y,
    global_batch,
    epochs,
    learning_rate,
    shuffle_seed,
    checkpoint_dir=None,
    crash_at_epoch=None,
    log=print,
):
    """Train `model` (built in `strategy.scope()`) on (x, y) with a mean-squared-error loss
    and SGD.

    Each replica computes the loss of its share of the global batch divided by the
    *global* batch size, so that the gradients summed over the replicas are the gradient
    of the batch's mean loss. With `checkpoint_dir`, the model, optimizer and epoch
    counter are saved after every epoch and restored at the start, so a restarted run
    goes on where the last one stopped. `crash_at_epoch` ends the process in the middle
    of that epoch, as a machine failure would. Returns the epoch losses of this run."""
    import keras
    import tensorflow as tf

    with strategy.scope():
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
        optimizer.build(model.trainable_variables)
    # plain: the same on every replica
    next_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    manager = None
    if checkpoint_dir is not None:
        checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, next_epoch=next_epoch
        )
        manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=1)
        if manager.latest_checkpoint:
            checkpoint.restore(
                manager.latest_checkpoint
            ).assert_existing_objects_matched()
            log(
                f"restored {Path(manager.latest_checkpoint).name}: going on at epoch"
                f" {int(next_epoch) + 1}"
            )

    def replica_step(inputs, targets):
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            per_example = tf.reduce_mean(tf.square(targets - predictions), axis=-1)
            loss = tf.nn.compute_average_loss(
                per_example, global_batch_size=global_batch
            )
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(
            zip(gradients, model.trainable_variables, strict=True)
        )
        return loss

    @tf.function
    def distributed_step(inputs, targets):
        losses = strategy.run(replica_step, args=(inputs, targets))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    epoch_losses = []
    for epoch in range(int(next_epoch), epochs):
        batches = strategy.experimental_distribute_dataset(
            epoch_dataset(x, y, global_batch, epoch, shuffle_seed)
        )
        total, steps = 0.0, 0
        for inputs, targets in batches:
            if epoch == crash_at_epoch and steps == 2:
                log(f"epoch {epoch + 1}: the process fails in the middle of the epoch")
                sys.stdout.flush()
                os._exit(3)
            total += float(distributed_step(inputs, targets))
            steps += 1
        epoch_losses.append(total / steps)
        next_epoch.assign(epoch + 1)
        if manager is not None:
            manager.save()
        log(f"epoch {epoch + 1:>2}  loss {epoch_losses[-1]:.4f}")
    return epoch_losses


def short_message(error, length=110):
    """The error's message on one line, its middle left out when it is long (TensorFlow prints tensors in it)."""
    message = " ".join(str(error).split())
    return (
        message
        if len(message) <= length
        else f"{message[: length // 2 - 3]} ... {message[-length // 2 :]}"
    )


WATCH_PARENT = (  # run_workers sets it to its process id; a cluster manager does not
    "RNN_BOOK_WORKER_WATCHES_PARENT"
)


def _exit_when_parent_goes(index):
    """Leave at once when our standard input closes: the notebook that started us has ended."""
    sys.stdin.read()
    try:
        print(
            f"worker {index}: the process that started me has ended; leaving",
            flush=True,
        )
    finally:  # its end of our stdout is gone too, so the print itself may fail
        os._exit(1)


def watch_parent(index, parent_pid):
    """Make sure this worker ends when the process that started it (`parent_pid`) ends, even if killed.

    On Linux the kernel itself kills us when our parent dies (prctl PR_SET_PDEATHSIG): that works while
    this process is inside a long C call that holds Python's GIL (TensorFlow's import, a collective
    waiting for a dead peer), when no Python thread can run. Elsewhere a thread waits for our standard
    input to close, which happens when the parent dies; it can act only once it gets the GIL.
    (The kernel's signal comes when the parent's *thread* that started us ends; `run_workers` waits
    in that thread until the workers end.)
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1  # from <linux/prctl.h>
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        # the parent died before the line above: no signal will come
        if os.getppid() != parent_pid:
            try:
                print(
                    f"worker {index}: the process that started me has ended; leaving",
                    flush=True,
                )
            finally:  # its end of our stdout may be gone already
                os._exit(1)
    threading.Thread(target=_exit_when_parent_goes, args=(index,), daemon=True).start()


def worker_main(job_dir):
    """Run one worker of a MultiWorkerMirroredStrategy job (TF_CONFIG set by `run_workers`)."""
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    # only under run_workers: a supervisor may give us no stdin at all
    if os.environ.get(WATCH_PARENT):
        watch_parent(index, int(os.environ[WATCH_PARENT]))
    import keras
    import tensorflow as tf

    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    data = np.load(job_dir / "data.npz")
    with strategy.scope():
        model = keras.models.load_model(job_dir / "model.keras", compile=False)
    if job.get("try_fit"):
        with strategy.scope():
            model.compile(optimizer="sgd", loss="mse")
        try:
            model.fit(
                data["x"],
                data["y"],
                batch_size=job["global_batch"],
                epochs=1,
                verbose=0,
            )
            print(
                f"worker {index}: Keras fit ran under MultiWorkerMirroredStrategy",
                flush=True,
            )
        except Exception as error:  # noqa: BLE001 - the chapter shows whatever fit raises here
            print(
                f"worker {index}: Keras fit failed: {type(error).__name__}:"
                f" {short_message(error)}",
                flush=True,
            )
        return
    crash = job.get("crash_at_epoch") if index == job.get("crash_worker", 1) else None
    train_with_loop(
        strategy,
        model,
        data["x"],
        data["y"],
        job["global_batch"],
        job["epochs"],
        job["learning_rate"],
        job["shuffle_seed"],
        checkpoint_dir=job_dir / f"checkpoints-{index}",
        crash_at_epoch=crash,
        log=lambda line: print(f"worker {index}: {line}", flush=True),
    )
    np.savez(
        job_dir / f"worker-{index}.npz", *[np.asarray(w) for w in model.get_weights()]
    )


def free_ports(count):
    """`count` distinct TCP ports that were free a moment ago on every interface (TensorFlow binds them all)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def write_job(job_dir, model, x, y, **settings):
    """Write what the workers read: the untrained model, the data and the loop's settings."""
    check_settings(settings)
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    model.save(job_dir / "model.keras")
    np.savez(job_dir / "data.npz", x=x, y=y)
    (job_dir / "job.json").write_text(json.dumps(settings), encoding="utf-8")


def run_workers(job_dir, num_workers=2, timeout=120, **overrides):
    """Start `num_workers` worker processes on 127.0.0.1, print their lines, and wait for them.

    Returns the workers' exit codes and the lines they printed. When one worker fails, the others
    are stopped at once, as a cluster manager would before restarting the job (left alone, they
    would block in their next all-reduce until TensorFlow's health check gives up on the missing
    worker). Every worker is stopped when this function ends, however it ends, and a worker whose
    parent dies leaves on its own (`watch_parent`: on Linux the kernel kills it, elsewhere it
    watches its standard input; only workers started here do), so none outlives the notebook's
    cell. The workers run on the CPU (CUDA_VISIBLE_DEVICES empty), so
    that two of them never compete for one GPU's memory. TensorFlow's server in each worker listens
    on every interface of the machine, without authentication; the addresses in TF_CONFIG are
    loopback only. If a worker could not open its port (another program took it after we found it
    free), the workers are started once more on new ports.
    `overrides` update job.json for this run (crash_at_epoch=..., try_fit=True).
    """
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(
            f"num_workers must be a positive whole number, got {num_workers!r}"
        )
    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    job = {name: value for name, value in job.items() if name in SETTINGS} | overrides
    (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    for attempt in (1, 2):
        codes, lines = _start_and_wait(job_dir, num_workers, timeout)
        logs = [
            (job_dir / f"worker-{index}.log").read_text(
                encoding="utf-8", errors="replace"
            )
            for index in range(num_workers)
        ]
        if attempt == 1 and any(PORT_TAKEN in log for log in logs):
            # another program took a port between our probe and the worker's start
            print(
                "a worker could not open its port (taken since we found it free);"
                " starting the workers again on new ports"
            )
            continue
        break
    for line in lines:
        print(line)
    return codes, lines


PORT_TAKEN = (  # what a worker's TensorFlow logs when its port is taken
    "Could not start gRPC server"
)


def _start_and_wait(job_dir, num_workers, timeout):
    """One attempt of run_workers: start the workers on fresh ports, wait, stop them; (codes, lines)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(num_workers)]}
    root = Path(__file__).resolve().parent.parent
    python_path = os.pathsep.join(
        filter(None, [str(root), os.environ.get("PYTHONPATH")])
    )
    workers, readers, lines = [], [], []
    try:
        for index in range(num_workers):
            task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            # the worker prints what we decode
            env = dict(
                os.environ,
                TF_CONFIG=json.dumps(task),
                CUDA_VISIBLE_DEVICES="",
                PYTHONPATH=python_path,
                PYTHONIOENCODING="utf-8",
                **{WATCH_PARENT: str(os.getpid())},
            )
            # TensorFlow's own messages
            with open(job_dir / f"worker-{index}.log", "w", encoding="utf-8") as errors:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "utils.distributed", str(job_dir)],
                        env=env,
                        cwd=root,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=errors,
                        encoding="utf-8",
                    )
                )
            readers.append(
                threading.Thread(
                    target=lambda w=workers[-1]: lines.extend(w.stdout), daemon=True
                )
            )
            readers[-1].start()
        deadline = time.monotonic() + timeout
        while any(w.poll() is None for w in workers):
            if any(w.poll() not in (None, 0) for w in workers):
                break  # one worker failed: the others would wait for it in their next all-reduce
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers did not finish in {timeout} s")
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
    for reader in readers:
        reader.join(timeout=5)
    # worker 0's lines first, in order
    lines = sorted(lines, key=lambda text: not text.startswith("worker 0"))
    return [worker.returncode for worker in workers], [
        line.rstrip("\n") for line in lines
    ]


if __name__ == "__main__":
    worker_main(sys.argv[1])
