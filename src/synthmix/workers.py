"""Tasks side by side on a CPU: one forked worker per core, each training or scoring whole tasks.

A ladder model's matrices are too small to keep two cores busy: one epoch of math (tiny, batch 8)
takes 8.2 s on two threads and 10.1 s on one, so two tasks on one thread each finish in 10.1 s
where one after the other they take 16.4 s. The tasks of a stage are independent (each its own
data, model and output files), so a stage runs them in `workers` processes with
`cores / workers` threads each.

Workers are forked, not spawned, so they inherit the imported modules (no second 5-s import of
torch and transformers). Forking is safe only before the parent has run a parallel torch op
(OpenMP's thread pool does not survive a fork), so a stage that uses workers does no tensor work
itself before `map_tasks`. Each result comes back in the order of `tasks`; an exception in a
worker is raised in the parent, naming the task.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from synthmix import distributed, paths
from synthmix.params import Params

T = TypeVar("T")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def count(params: Params, n_tasks: int) -> int:
    """How many workers a stage over `n_tasks` tasks uses.

    `workers` in params.yaml: 0 (auto) is one per core for ladder models on a CPU-only machine in a
    single process, and 1 otherwise: a GPU, `accelerate launch`, a hub model (whose matrices do fill
    the cores), or `threads` pinned by the user (e.g. `threads: 1` for `dvc queue start -j 2`,
    where the experiments already share the cores)."""
    if params.workers:
        return max(1, min(params.workers, n_tasks))
    if torch.cuda.is_available() or distributed.under_launcher() or params.threads or not params.uses_ladder:
        return 1
    return max(1, min(cores(), n_tasks))


def _call(job: tuple[Callable[[str], T], str, int]) -> T:
    fn, task, threads = job
    torch.set_num_threads(threads)
    # What the worker holds now (the imported torch and transformers, the previous task's survivors)
    # is not garbage: out of the collector's sight, the full collection that accelerate's
    # free_memory runs at the end of every task no longer walks it (a 10-step task: 0.57 -> 0.32 s
    # here), and the inherited pages stay shared with the parent.
    gc.freeze()
    try:
        return fn(task)
    except BaseException as err:  # re-raised in the parent, which sees which task failed
        raise RuntimeError(f"task {task}: {type(err).__name__}: {err}") from None


def schedule(tasks: Sequence[str], first: Sequence[str] = (),
             cost: Callable[[str], float] | None = None) -> list[int]:
    """The order (indices into `tasks`) in which the workers take the tasks: those in `first`, then
    the most expensive by `cost` first (longest processing time first: started last, a long task
    would run alone at the end while the other cores idle). Ties keep the given order."""
    estimate = {task: float(cost(task)) if cost is not None else 0.0 for task in tasks}
    return sorted(range(len(tasks)), key=lambda i: (tasks[i] not in first, -estimate[tasks[i]]))


def file_size(path: str | os.PathLike[str]) -> float:
    """Bytes in `path` (0 if it is missing): a cost estimate for `schedule`."""
    try:
        return float(os.path.getsize(path))
    except OSError:
        return 0.0


def line_count(path: str | os.PathLike[str]) -> float:
    """Lines (records) in `path` (0 if it is missing): a cost estimate for `schedule`."""
    try:
        with open(path, "rb") as f:
            return float(sum(1 for _ in f))
    except OSError:
        return 0.0


def generation_cost(params: Params, split: str) -> Callable[[str], float]:
    """`schedule`'s estimate for a stage that generates: a task's `split` examples x its budget of
    new tokens (generate samples an answer to every train prompt, evaluate to every test item)."""
    return lambda name: line_count(paths.external(name, split)) * params.generation_budget(params.task(name))


def map_tasks(fn: Callable[[str], T], tasks: Sequence[str], workers: int, threads: int = 0,
              first: Sequence[str] = (), cost: Callable[[str], float] | None = None) -> list[T]:
    """[fn(task) for task in tasks], in `workers` forked processes of `threads` threads each
    (0: cores / workers); in this process when workers is 1. `fn` must be a module-level function
    or a functools.partial of one (it is pickled to the workers) and return picklable results.

    The workers take the tasks in `schedule`'s order: `first`, then the costliest by `cost` (an
    estimate of a task's work, e.g. its training set's size). The results are in the order of
    `tasks` all the same, and are the same whatever the order (each task is seeded on its own)."""
    if workers <= 1 or len(tasks) <= 1:
        return [fn(task) for task in tasks]
    each = threads or max(1, cores() // workers)
    order = schedule(tasks, first, cost)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        done = pool.map(_call, [(fn, tasks[i], each) for i in order], chunksize=1)
    results: list[T] = [None] * len(tasks)  # type: ignore[list-item]
    for i, result in zip(order, done):
        results[i] = result
    return results


def run_tasks(params: Params, fn: Callable[[str], T], first: Sequence[str] = (),
              cost: Callable[[str], float] | None = None) -> list[T]:
    """A stage's [fn(task) for task in params.tasks]: side by side in `count` forked workers on a
    CPU (`map_tasks`), else in this process, which first joins the process group under
    `accelerate launch` (every process then takes part in every task, one after the other)."""
    n_workers = count(params, len(params.tasks))
    if n_workers <= 1:
        distributed.state()
    return map_tasks(fn, params.tasks, n_workers, params.threads, first, cost)
