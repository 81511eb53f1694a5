"""Task families. `get_task("math")` returns the family registered under that name."""

from __future__ import annotations

from synthmix.tasks.base import REGISTRY, Example, Scored, TaskFamily, register

# Importing the modules registers them.
from synthmix.tasks import code, commonsense, factual, math, reading  # noqa: E402,F401


def get_task(name: str) -> TaskFamily:
    """The task family registered as `name` (KeyError naming the known ones otherwise)."""
    try:
        return REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {sorted(REGISTRY)}") from None


def task_names() -> list[str]:
    return sorted(REGISTRY)


__all__ = ["Example", "Scored", "TaskFamily", "get_task", "register", "task_names"]
