"""Chapter setup: one seed for everything, the GPU's numerics, versions and the device in one line."""

import os
import time

from utils.bootstrap import require_versions

require_versions()  # a clear message, not a traceback from deep inside Keras, on too old a TensorFlow or Keras

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from utils.plots import use_book_style  # noqa: E402

DEFAULT_SEED = 42


def seed_from_environment(environ=None):
    """Return the book's seed: the integer in BOOK_SEED, or 42 when it is unset."""
    environ = os.environ if environ is None else environ
    raw = environ.get("BOOK_SEED", "").strip()
    if raw == "":
        return DEFAULT_SEED
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(
            f"BOOK_SEED must be a whole number such as 42, got {raw!r}"
        ) from None
    if seed < 0:
        raise ValueError(f"BOOK_SEED must not be negative, got {seed}")
    return seed


def gpu_available():
    """True when TensorFlow sees at least one GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def cpu_threads(environ=None):
    """How many threads TensorFlow's CPU kernels (its intra-op pool) use in this process.

    TensorFlow's own rule, in its order: a count set with `tf.config.threading`, else the
    TF_NUM_INTRAOP_THREADS environment variable (which `make test` sets), else one thread per core
    that this process may run on. Chapters print this instead of assuming a thread count.
    """
    configured = tf.config.threading.get_intra_op_parallelism_threads()
    if configured > 0:
        return configured
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count()
    )


def device_summary():
    """A one-line description of where Keras will run: the GPU's name, or the CPU and its threads."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", gpus[0].name)
        return f"GPU ({name}{f' x{len(gpus)}' if len(gpus) > 1 else ''})"
    threads = cpu_threads()
    return (
        f"CPU ({os.cpu_count()} cores, TensorFlow uses {threads}"
        f" thread{'s' if threads > 1 else ''})"
    )


def configure_gpus():
    """Full float32 precision everywhere, and GPU memory taken as needed; return a short report.

    TensorFlow runs float32 matrix products and convolutions in TensorFloat-32 by default on NVIDIA
    GPUs from the Ampere generation on (A100, L4, H100...): their inputs keep 10 of float32's 23
    mantissa bits, a relative error of about 5e-4, which is fine for training and breaks the book's
    1e-5 checks of NumPy against Keras. We turn it off (it changes nothing on a CPU). And TensorFlow
    reserves nearly all of a GPU's memory for the first process that touches it, so two notebooks
    cannot share one GPU; memory growth makes each take only what it uses. Growth can only be set
    before TensorFlow first uses the GPU; when it is too late, the report says how to get it.
    """
    tf.config.experimental.enable_tensor_float_32_execution(False)
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "TF32 off"
    # TensorFlow already uses the GPU in this process: growth is what it was then
    try:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        growth = "on"
    except RuntimeError:
        # TF reads exactly "true"
        already = os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH") == "true" or all(
            tf.config.experimental.get_memory_growth(gpu) for gpu in gpus
        )
        growth = (
            "on"
            if already
            else (
                "off (TensorFlow used the GPU before setup_book: restart the kernel, "
                "or set TF_FORCE_GPU_ALLOW_GROWTH=true)"
            )
        )
    return f"TF32 off | memory growth {growth}"


def setup_book(seed=None):
    """Seed Python, NumPy and TensorFlow, configure the GPU, apply the figure style, print what runs where.

    The seed comes from the argument, else from BOOK_SEED, else 42. Returns it.
    """
    seed = seed_from_environment() if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    numerics = configure_gpus()
    keras.utils.set_random_seed(seed)
    use_book_style()
    print(
        f"TensorFlow {tf.__version__} | Keras {keras.__version__} | {device_summary()}"
        f" | {numerics} | BOOK_SEED={seed}"
    )
    return seed


class EpochLogger(keras.callbacks.Callback):
    """Print one short line every `every` epochs and after the last one (early stopping included); no bars."""

    def __init__(self, every=1, name=""):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.every = every
        self.name = f"{name}: " if name else ""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.last_epoch, self.last_logs, self.printed_epoch = 0, {}, 0

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch, self.last_logs = epoch + 1, logs or {}
        if self.last_epoch % self.every == 0:
            self._print()

    def on_train_end(self, logs=None):
        # the last epoch, also when early stopping ended training
        if self.last_epoch != self.printed_epoch:
            self._print()

    def _print(self):
        metrics = " ".join(
            f"{key} {value:.4f}" for key, value in self.last_logs.items()
        )
        elapsed = time.perf_counter() - self.start
        print(f"{self.name}epoch {self.last_epoch:>3}  {metrics}  ({elapsed:.1f} s)")
        self.printed_epoch = self.last_epoch
