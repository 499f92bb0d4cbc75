"""One line per figure: what was measured, its goal, and `ok` or `short` (issue 13's table).

Every benchmark that `make bench` runs (bench/all.py) returns its figures as `Figure`s; run on its
own, it prints the same lines. A figure that was not measured says so and why, never a number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    measured: str  # as printed, with its unit, or why it was not measured
    goal: str
    ok: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return "not measured" if self.ok is None else "ok" if self.ok else "short"


def line(figure: Figure) -> str:
    return f"{figure.name:<70} {figure.measured:<38} goal {figure.goal:<26} {figure.verdict}"


def show(figures: list[Figure]) -> None:
    for figure in figures:
        print(line(figure), flush=True)


def machine() -> str:
    return (f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
            f"(1 min) when printed")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile by nearest rank; NaN of nothing."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
