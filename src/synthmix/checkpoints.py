"""Resuming a killed train stage: scratch checkpoints outside DVC's outputs.

DVC deletes a stage's outputs before it runs the stage again, so nothing that must survive a kill
can live in them. Each task of a train stage gets a scratch directory,
``.synthmix/scratch/train/iter<N>/<task>-<key>/``, where ``<key>`` hashes everything the task's
result depends on (its params, seed, model, training set, starting weights and the training
code), so a rerun resumes only the very same computation, and a changed one starts afresh:

- ``step-<K>/``: accelerate's ``save_state`` (weights, optimizer, scheduler, RNG states) plus
  ``progress.json`` (where the data order stood, the loss curve so far), every
  ``train.checkpoint_every`` optimizer steps; written to ``*.tmp`` and renamed, so a kill while
  saving leaves the previous one whole. Only the newest is kept.
- ``done/``: a finished task's model, loss curve and summary, so a rerun after a kill in another
  task copies it back instead of training it again.

The stage removes ``.synthmix/scratch/train/iter<N>`` when every task has finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

SCRATCH = Path(".synthmix") / "scratch" / "train"


def iteration_dir(iteration: int) -> Path:
    return SCRATCH / f"iter{iteration}"


def task_key(parts: dict[str, Any], files: list[Path]) -> str:
    """A digest of `parts` (JSON-able) and the bytes of `files` (a directory: every file in it)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for path in files:
        for item in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if item.is_file():
                digest.update(str(item.relative_to(path) if path.is_dir() else item.name).encode())
                with item.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
    return digest.hexdigest()[:16]


def task_dir(iteration: int, task: str, key: str) -> Path:
    """This task's scratch directory; stale ones of the same task (other keys) are removed."""
    parent = iteration_dir(iteration)
    if parent.exists():
        for old in parent.glob(f"{task}-*"):
            if old.name != f"{task}-{key}":
                shutil.rmtree(old, ignore_errors=True)
    return parent / f"{task}-{key}"


def latest(directory: Path | None) -> Path | None:
    """The newest complete step checkpoint in `directory`, if any."""
    if directory is None or not directory.exists():
        return None
    steps = [p for p in directory.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")
             and (p / "progress.json").exists()]
    return max(steps, key=lambda p: int(p.name.split("-")[1]), default=None)


def staging(directory: Path, step: int) -> Path:
    """Where checkpoint `step` is written (by every process) before `commit` renames it."""
    return directory / f"step-{step}.tmp"


def begin(directory: Path, step: int) -> Path:
    """The (empty) staging directory of checkpoint `step` (main process)."""
    tmp = staging(directory, step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def commit(directory: Path, step: int, progress: dict[str, Any]) -> Path:
    """Finish checkpoint `step` (main process): progress.json, the atomic rename, older ones dropped."""
    tmp, final = staging(directory, step), directory / f"step-{step}"
    (tmp / "progress.json").write_text(json.dumps(progress))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in directory.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _copy_tree(src: Path, dst: Path) -> None:
    """A copy of `src` at `dst` (hard links where the filesystem allows: checkpoints can be large)."""
    if dst.exists():
        shutil.rmtree(dst)

    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link_or_copy)


def mark_done(directory: Path, model_dir: Path, log_dir: Path | None, summary: dict[str, Any]) -> None:
    """Keep a finished task's outputs in scratch; the step checkpoints are no longer needed."""
    tmp = directory / "done.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _copy_tree(model_dir, tmp / "model")
    if log_dir is not None and log_dir.exists():
        _copy_tree(log_dir, tmp / "live")
    (tmp / "summary.json").write_text(json.dumps(summary))
    shutil.rmtree(directory / "done", ignore_errors=True)
    os.replace(tmp, directory / "done")
    for old in directory.glob("step-*"):
        shutil.rmtree(old, ignore_errors=True)


def restore_done(directory: Path, model_dir: Path, log_dir: Path) -> dict[str, Any] | None:
    """A finished task's summary, with its model and loss curve copied back; None if not finished."""
    done = directory / "done"
    if not (done / "summary.json").exists():
        return None
    _copy_tree(done / "model", model_dir)
    if (done / "live").exists():
        _copy_tree(done / "live", log_dir)
    return json.loads((done / "summary.json").read_text())


def clear(iteration: int) -> None:
    """The stage finished: its scratch space goes."""
    clear_dir(iteration_dir(iteration))


def clear_dir(directory: Path) -> None:
    """Remove a finished run's scratch `directory`, and the scratch folders above it left empty."""
    shutil.rmtree(directory, ignore_errors=True)
    for parent in (directory.parent, SCRATCH, SCRATCH.parent, SCRATCH.parent.parent):
        try:
            parent.rmdir()  # only when empty
        except FileNotFoundError:
            continue
        except OSError:
            break
