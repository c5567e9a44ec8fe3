"""What pyproject.toml promises a fresh install."""

from __future__ import annotations

import pathlib
import re

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

PYPROJECT = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
FAST_MOVING = {"gymnasium", "pettingzoo", "open-spiel", "ray", "streamlit"}


def _requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in declared]


def test_fast_moving_dependencies_are_capped_at_what_the_suite_passed_with():
    """A release that renames or breaks something (gymnasium's Taxi-v3 -> v4) must not install blindly."""
    seen = set()
    for requirement in _requirements():
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in FAST_MOVING:
            seen.add(name)
            operators = {spec.operator for spec in requirement.specifier}
            assert "<" in operators and ">=" in operators, f"{requirement} needs a tested range >=low,<high"
    assert seen == FAST_MOVING
