"""Measurements that several chapters make: step times (alone or in turns), paired ratios, a straight-line fit."""

import time

import numpy as np


def median_seconds(step, repeats=7):
    """Call `step()` once to warm up (tracing, caches), then `repeats` times; return the median seconds."""
    if not callable(step):
        raise ValueError(f"step must be a function to call, got {step!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    step()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def interleaved_seconds(steps, rounds=15):
    """Time several step functions in turns and return {name: [seconds of each round]}.

    `steps` is a dict {name: function}. Each function is called once to warm up, then the functions
    take turns for `rounds` rounds, one call each per round, so that a slow spell of the machine
    falls on all of them alike instead of on whichever was being timed at the moment.
    """
    if (
        not isinstance(steps, dict)
        or not steps
        or not all(callable(step) for step in steps.values())
    ):
        raise ValueError(
            f"steps must be a non-empty dict of functions to call, got {steps!r}"
        )
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive int, got {rounds!r}")
    for step in steps.values():
        step()
    seconds = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def interleaved_median_seconds(steps, rounds=15):
    """Like `interleaved_seconds`, but return {name: median seconds}."""
    return {
        name: float(np.median(values))
        for name, values in interleaved_seconds(steps, rounds).items()
    }


def paired_ratio(seconds, numerator, denominator):
    """Median over rounds of seconds[numerator][i] / seconds[denominator][i] (from `interleaved_seconds`).

    The two calls of one round ran moments apart, under the same load, so their ratio is steadier than
    the ratio of two medians when the machine is busy with something else.
    """
    for name in (numerator, denominator):
        if name not in seconds:
            raise ValueError(
                f"no timings for {name!r}; timed: {sorted(seconds, key=str)}"
            )
    top, bottom = (
        np.asarray(seconds[numerator], dtype=float),
        np.asarray(seconds[denominator], dtype=float),
    )
    if top.shape != bottom.shape or top.size == 0 or np.any(bottom <= 0):
        raise ValueError(
            "need the same positive number of rounds for both, with times above zero"
        )
    return float(np.median(top / bottom))


def linear_fit(x, y):
    """Least-squares line through the points (x, y): return slope, intercept and R²."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(
            f"x and y must be 1-D of the same length, at least 3 points; got {x.shape}"
            f" and {y.shape}"
        )
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    return (
        float(slope),
        float(intercept),
        float(1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2)),
    )
