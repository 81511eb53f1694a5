"""Task families. `get_task("math")` returns the family registered under that name."""

from __future__ import annotations

from typing import Literal

from synthmix.tasks.base import REGISTRY, Example, Scored, TaskFamily, register

# Importing the modules registers them.
from synthmix.tasks import code, commonsense, factual, math, reading  # noqa: E402,F401


def get_task(name: str, source: Literal["builtin", "hub"] = "builtin") -> TaskFamily:
    """The task family registered as `name` (KeyError naming the known ones otherwise), its validity
    rules set for data of `source` (params.yaml `prepare.source`; see `TaskFamily.source`)."""
    try:
        task = REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {sorted(REGISTRY)}") from None
    if source not in ("builtin", "hub"):
        raise ValueError(f"source must be 'builtin' or 'hub', got {source!r}")
    task.source = source
    return task


def task_names() -> list[str]:
    return sorted(REGISTRY)


__all__ = ["Example", "Scored", "TaskFamily", "get_task", "register", "task_names"]
