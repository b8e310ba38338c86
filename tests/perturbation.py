"""A probe for the numeric environments of the Makefile.

`make outputs` writes the stored outputs under CPU_ENV plus OUTPUTS_ENV; `make test` runs the
chapters under CPU_ENV plus PERTURBED_ENV (all read from the Makefile by tests.makefile_vars).
`probe_results()` computes a few results that depend on the environment (single operations and
tiny trained models of the kinds the chapters use), so that a test can check that each
perturbation really changes low-order bits on the machine at hand.
"""


def probe_results():
    """Results that depend on the numeric environment: {name: float32 array}.

    Two single operations (a matrix product with a long inner dimension, which oneDNN splits over
    threads, and the kernel gradient of a 1-D convolution), then the weights of a Dense, a GRU and a
    Conv1D model after one short epoch of training.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    left, right = (
        rng.normal(size=(256, 4096)).astype("float32"),
        rng.normal(size=(4096, 256)).astype("float32"),
    )
    results = {"matrix product": tf.matmul(left, right).numpy()}
    inputs = tf.constant(rng.normal(size=(64, 30, 8)), "float32")
    kernel = tf.constant(rng.normal(size=(3, 8, 16)), "float32")
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        loss = tf.reduce_sum(tf.nn.conv1d(inputs, kernel, 1, "VALID") ** 2)
    results["convolution gradient"] = tape.gradient(loss, kernel).numpy()

    keras.utils.set_random_seed(0)
    x = rng.normal(size=(128, 24, 8)).astype("float32")
    y = rng.normal(size=(128, 1)).astype("float32")
    layers = keras.layers
    bodies = {
        "dense": [layers.Flatten(), layers.Dense(32, activation="tanh")],
        "recurrent": [layers.GRU(16)],
        "convolution": [
            layers.Conv1D(16, 3, activation="relu"),
            layers.GlobalAveragePooling1D(),
        ],
    }
    for kind, body in bodies.items():
        model = keras.Sequential([keras.Input((24, 8)), *body, layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        results[f"trained {kind} model"] = np.concatenate(
            [w.ravel() for w in model.get_weights()]
        ).astype("float32")
    return results


if __name__ == "__main__":
    import sys

    import numpy as np

    np.savez(sys.argv[1], **probe_results())
