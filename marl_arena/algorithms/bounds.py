"""Numeric bounds of config fields: one test and one wording for numbers and schedules alike.

``AlgorithmConfig.validate`` checks plain numbers (``_check_number``) and
``schedules.check_schedule`` checks a number or each value of a schedule; both ask the same
question and name the bounds the same way in their errors.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def within(value: Any, low: float | None = None, high: float | None = None, low_inclusive: bool = True) -> bool:
    """Whether ``value`` is a finite real number (not a bool) within the bounds (``high`` inclusive)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    return ok and (high is None or value <= high)


def describe(low: float | None = None, high: float | None = None, low_inclusive: bool = True) -> str:
    """The bounds in words, e.g. ``'> 0.0 and <= 1.0'``; empty without bounds."""
    parts = [f"{'>=' if low_inclusive else '>'} {low}"] if low is not None else []
    if high is not None:
        parts.append(f"<= {high}")
    return " and ".join(parts)
