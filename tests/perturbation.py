"""The numeric environments of the Makefile, read from it (one source of truth), and a probe.

`make outputs` writes the stored outputs under CPU_ENV; `make test` runs the chapters under
CPU_ENV plus PERTURBED_ENV. `probe_weights()` trains tiny models of the kinds the chapters use
(dense, recurrent, convolutional) and returns their weights, so that a test can check that each
perturbation really changes low-order bits on the machine at hand.
"""

import re
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"


def makefile_env(name, makefile=MAKEFILE):
    """{'VAR': 'value'} of a Makefile line `NAME := VAR=value VAR2=value2 \\` (continuations joined)."""
    text = Path(makefile).read_text().replace("\\\n", " ")
    match = re.search(rf"^{re.escape(name)} :=(.*)$", text, flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"{makefile} has no line `{name} := ...`")
    pairs = [item.split("=", 1) for item in match.group(1).split()]
    if not all(len(pair) == 2 for pair in pairs):
        raise ValueError(f"{name} in {makefile} must list VAR=value pairs only")
    return dict(pairs)


def probe_weights():
    """Train a Dense, a GRU and a Conv1D model for a few steps; return {kind: all weights as float32}."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 24, 8)).astype("float32")
    y = rng.normal(size=(128, 1)).astype("float32")
    layers = keras.layers
    bodies = {"dense": [layers.Flatten(), layers.Dense(32, activation="tanh")],
              "recurrent": [layers.GRU(16)],
              "convolution": [layers.Conv1D(16, 3, activation="relu"), layers.GlobalAveragePooling1D()]}
    weights = {}
    for kind, body in bodies.items():
        model = keras.Sequential([keras.Input((24, 8)), *body, layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        weights[kind] = np.concatenate([w.ravel() for w in model.get_weights()]).astype("float32")
    return weights


if __name__ == "__main__":
    import sys

    import numpy as np

    np.savez(sys.argv[1], **probe_weights())
