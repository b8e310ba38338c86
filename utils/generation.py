"""Autoregressive generation: run a one-step model and feed each output back as the next input.

Chapter 1 uses it for the one-to-many pattern, chapter 3 for sampling text from a language model.
"""


def generate(step, first_input, state, num_steps):
    """Run `step` `num_steps` times, feeding each output back as the next input.

    step(inputs, state) must return (output, next_state); the output of one step is the input of the
    next. Returns the list of the `num_steps` outputs and the final state.
    """
    if not callable(step):
        raise TypeError(
            "step must be a function step(inputs, state) -> (output, next_state), got"
            f" {step!r}"
        )
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 0:
        raise ValueError(
            f"num_steps must be a non-negative whole number, got {num_steps!r}"
        )
    inputs, outputs = first_input, []
    for _ in range(num_steps):
        result = step(inputs, state)
        if not isinstance(result, tuple) or len(result) != 2:
            raise ValueError("step must return a pair (output, next_state)")
        inputs, state = result
        outputs.append(inputs)
    return outputs, state
