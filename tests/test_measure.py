import pytest

from utils.measure import (
    interleaved_median_seconds,
    interleaved_seconds,
    linear_fit,
    median_seconds,
    paired_ratio,
)


def test_median_seconds_warms_up_then_times_every_repeat():
    calls = []
    seconds = median_seconds(lambda: calls.append(1), repeats=5)
    assert len(calls) == 6 and 0 <= seconds < 0.1


@pytest.mark.parametrize("step, repeats", [(None, 3), (print, 0), (print, 2.5)])
def test_median_seconds_rejects_bad_arguments(step, repeats):
    with pytest.raises(ValueError):
        median_seconds(step, repeats)


def test_linear_fit_recovers_a_line_and_measures_its_fit():
    slope, intercept, r_squared = linear_fit([1, 2, 3, 4], [3, 5, 7, 9])
    assert (
        slope == pytest.approx(2)
        and intercept == pytest.approx(1)
        and r_squared == pytest.approx(1)
    )
    assert linear_fit([1, 2, 3, 4], [1, 3, 1, 3])[2] < 0.5


def test_linear_fit_rejects_mismatched_points():
    with pytest.raises(ValueError, match="same length"):
        linear_fit([1, 2, 3], [1, 2])


def test_interleaved_median_seconds_times_every_step_in_turns():
    calls = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    seconds = interleaved_median_seconds(steps, rounds=3)
    assert calls == ["a", "b"] * 4  # one warm-up each, then three rounds in turns
    assert set(seconds) == {"a", "b"} and all(value >= 0 for value in seconds.values())


def test_interleaved_median_seconds_rejects_bad_arguments():
    with pytest.raises(ValueError, match="non-empty dict"):
        interleaved_median_seconds({})
    with pytest.raises(ValueError, match="non-empty dict"):
        interleaved_median_seconds({"a": 1})
    with pytest.raises(ValueError, match="rounds"):
        interleaved_median_seconds({"a": lambda: None}, rounds=0)


def test_interleaved_seconds_keeps_every_round():
    seconds = interleaved_seconds({"a": lambda: None, "b": lambda: None}, rounds=4)
    assert set(seconds) == {"a", "b"} and all(
        len(values) == 4 for values in seconds.values()
    )


def test_paired_ratio_is_the_median_of_the_ratios_of_each_round():
    # a slow spell hits round 2 of both
    seconds = {"slow": [2.0, 30.0, 4.0], "fast": [1.0, 10.0, 1.0]}
    assert paired_ratio(seconds, "slow", "fast") == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no timings"):
        paired_ratio(seconds, "slow", "missing")
    with pytest.raises(ValueError, match="same positive number"):
        paired_ratio({"a": [1.0], "b": [1.0, 2.0]}, "a", "b")
