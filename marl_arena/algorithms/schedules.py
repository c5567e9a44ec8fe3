"""RLlib-style schedules for a training field: a number, or ``[[env_steps, value], ...]``.

A schedule lets a field such as PPO's ``lr`` or ``entropy_coeff`` change over training
instead of holding one value: ``lr=[[0, 3e-4], [1_000_000, 3e-5]]`` anneals the learning
rate linearly over the first million sampled env steps and then holds 3e-5. The clock is
the algorithm's lifetime count of sampled env steps, as in RLlib. A self-play learner that
keeps oscillating around an equilibrium needs exactly this: large steps while it is far
from the equilibrium, small ones (and less entropy) once it circles it.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

from marl_arena.algorithms.bounds import describe, within

Schedule = float | Sequence[Sequence[float]]


def is_schedule(value: Any) -> bool:
    """True for a list or tuple (of points), False for anything else (a constant number)."""
    return isinstance(value, (list, tuple))


def value_at(schedule: Schedule, env_steps: float) -> float:
    """The schedule's value after ``env_steps`` sampled env steps: linear between points, the
    first value before the first point (DQN's ``epsilon`` may start later than 0), the last value
    after the last point; a plain number is that number throughout."""
    if not is_schedule(schedule):
        return float(schedule)
    points = [(float(t), float(v)) for t, v in schedule]
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if env_steps < t1:
            return v0 + (v1 - v0) * (max(env_steps, t0) - t0) / (t1 - t0)
    return points[-1][1]


def check_schedule(config: Any, name: str, low: float | None = None, high: float | None = None,
                   low_inclusive: bool = True) -> None:
    """Raise a ValueError naming ``config.<name>`` unless it is a finite number within the
    bounds, or a schedule: points ``[env_steps, value]`` whose env steps are integers that
    start at 0 and increase strictly, each value within the bounds."""
    value = getattr(config, name)

    def number_ok(v: Any) -> bool:
        return within(v, low, high, low_inclusive)

    bounds = describe(low, high, low_inclusive)
    allowed = (f"a number{' ' + bounds if bounds else ''}, or a schedule [[env_steps, value], ...] whose env steps "
               f"start at 0 and increase strictly, each value {bounds or 'finite'}, e.g. [[0, 3e-4], [1000000, 3e-5]]")
    if not is_schedule(value):
        if not number_ok(value):
            raise ValueError(f"{name}={value!r} is not allowed: it must be {allowed}.")
        return
    problem = None
    if not value or not all(is_schedule(p) and len(p) == 2 for p in value):
        problem = "every point must be a pair [env_steps, value]"
    elif any(isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0 for t, _ in value):
        problem = "every point's env steps must be an integer >= 0"
    elif value[0][0] != 0:
        problem = f"the first point must be at env step 0 (it is at {value[0][0]})"
    elif any(t1 <= t0 for (t0, _), (t1, _) in zip(value, value[1:])):
        problem = "the points' env steps must increase strictly"
    elif not all(number_ok(v) for _, v in value):
        problem = f"every value must be {bounds or 'a finite number'}"
    if problem:
        raise ValueError(f"{name}={value!r} is not allowed: {problem}; it must be {allowed}.")
