"""Timing helpers shared by the benchmarks: one call timed, and A/B runs interleaved."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(function: Callable[[], object]) -> float:
    """Seconds one call of ``function`` takes."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def interleave(
    rounds: int, first: Callable[[], object], second: Callable[[], object]
) -> tuple[list[float], list[float]]:
    """Timings of ``first`` and ``second``, alternating which runs first each round (A B, B A, ...)
    so drift and neighbours' load hit both sides alike."""
    a_times, b_times = [], []
    for index in range(rounds):
        if index % 2 == 0:
            a_times.append(timed(first))
            b_times.append(timed(second))
        else:
            b_times.append(timed(second))
            a_times.append(timed(first))
    return a_times, b_times
