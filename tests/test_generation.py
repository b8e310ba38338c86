"""utils.generation.generate feeds each output back as the next input."""

import pytest

from utils.generation import generate


def counting_step(value, state):
    """Output the input plus one; the state counts the calls."""
    return value + 1, state + 1


def test_each_output_is_the_next_input():
    outputs, state = generate(counting_step, 10, 0, 4)
    assert outputs == [11, 12, 13, 14]
    assert state == 4


def test_zero_steps_returns_nothing_and_the_same_state():
    assert generate(counting_step, 10, "unchanged", 0) == ([], "unchanged")


def test_the_state_is_threaded_through():
    seen = []

    def step(value, state):
        seen.append(state)
        return value, state * 2

    generate(step, None, 1, 4)
    assert seen == [1, 2, 4, 8]


@pytest.mark.parametrize("num_steps", [-1, 2.5, True, "3"])
def test_bad_num_steps(num_steps):
    with pytest.raises(ValueError, match="num_steps"):
        generate(counting_step, 0, 0, num_steps)


def test_step_must_be_callable_and_return_a_pair():
    with pytest.raises(TypeError, match="step must be a function"):
        generate(None, 0, 0, 1)
    with pytest.raises(ValueError, match="pair"):
        generate(lambda value, state: value, 0, 0, 1)
