"""Task families: the built-in ones (a module each, registered with `@register`) and the YAML tasks
of params.yaml `task_paths` (`synthmix.tasks.yaml_task`). Stages get a configured family from
`Params.task(name)`, which calls `get_task` with the task's source and the checked YAML specs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from synthmix.tasks.base import REGISTRY, Example, Scored, TaskFamily, register

# Importing the modules registers them.
from synthmix.tasks import code, commonsense, factual, math, reading  # noqa: E402,F401

if TYPE_CHECKING:
    from synthmix.tasks.yaml_spec import TaskSpec


def get_task(name: str, source: Literal["builtin", "hub", "yaml"] = "builtin",
             specs: Mapping[str, TaskSpec] | None = None) -> TaskFamily:
    """The task family `name`: a built-in one, its validity rules set for data of `source`
    (`TaskFamily.source`), or the YAML task of that name among `specs` (KeyError naming the known
    tasks otherwise)."""
    if specs and name in specs:
        from synthmix.tasks.yaml_task import YamlTask

        return YamlTask(specs[name])
    try:
        task = REGISTRY[name]()
    except KeyError:
        known = sorted(REGISTRY) + sorted(specs or ())
        raise KeyError(f"unknown task {name!r}; known tasks: {known}") from None
    if source not in ("builtin", "hub"):
        raise ValueError(f"source of built-in task {name!r} must be 'builtin' or 'hub', got {source!r}")
    task.source = source
    return task


def task_names() -> list[str]:
    """The built-in families' names."""
    return sorted(REGISTRY)


def hub_defaults() -> dict[str, dict[str, dict]]:
    """Per built-in family with hub data, its `prepare.hub` defaults (`TaskFamily.hub_defaults`)."""
    import copy

    return {name: copy.deepcopy(cls.hub_defaults) for name, cls in sorted(REGISTRY.items()) if cls.hub_defaults}


def display_key(task: TaskFamily | str) -> tuple[int, str]:
    """Sort key of tables and plots: the family's `order`, then its name (an unknown name last)."""
    if isinstance(task, str):
        family = REGISTRY.get(task)
        return (family.order if family is not None else 1000, task)
    return (task.order, task.name)


__all__ = ["Example", "Scored", "TaskFamily", "display_key", "get_task", "hub_defaults", "register", "task_names"]
