"""Measurements that several chapters make: median step times (alone or in turns) and a straight-line fit."""

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


def interleaved_median_seconds(steps, rounds=15):
    """Time several step functions in turns and return {name: median seconds}.

    `steps` is a dict {name: function}. Each function is called once to warm up, then the functions
    take turns for `rounds` rounds, one call each per round, so that a slow spell of the machine
    falls on all of them alike instead of on whichever was being timed at the moment.
    """
    if not isinstance(steps, dict) or not steps or not all(callable(step) for step in steps.values()):
        raise ValueError(f"steps must be a non-empty dict of functions to call, got {steps!r}")
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
    return {name: float(np.median(values)) for name, values in seconds.items()}


def linear_fit(x, y):
    """Least-squares line through the points (x, y): return slope, intercept and R²."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"x and y must be 1-D of the same length, at least 3 points; got {x.shape} and {y.shape}")
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    return float(slope), float(intercept), float(1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2))
