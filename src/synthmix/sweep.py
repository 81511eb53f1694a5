"""`synthmix queue`: where a `dvc exp run --queue` sweep stands, and where each failed run's log is.

DVC keeps the output of every experiment its queue ran (`dvc queue logs NAME` prints it) in a
file under ``.dvc/tmp/exps/``; this verb lists the queue through DVC's own API - queued, running,
succeeded, failed - and for each failed experiment prints that file's path and its last lines,
so a failure in a 30-run sweep is one command away. It also flags any log that shows a DVC lock
error (two experiments fighting over one repository lock). Exit 1 when any experiment failed or
a lock error was seen, 0 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from synthmix.params import Params

LOCK_ERRORS = ("Unable to acquire lock", "LockError", "is locked by")
TAIL_LINES = 8


def _log_path(queue: Any, entry: Any) -> Path | None:
    try:
        return Path(queue.proc[entry.stash_rev].stdout)
    except (KeyError, AttributeError, TypeError):
        return None


def _name(entry: Any) -> str:
    return entry.name or entry.stash_rev[:7]


def status(repo_dir: str = ".") -> dict[str, Any]:
    """The queue's entries by state, each failed one with its log path and tail; lock errors seen."""
    from dvc.repo import Repo

    with Repo(repo_dir) as repo:
        queue = repo.experiments.celery_queue
        queued = [_name(e) for e in queue.iter_queued()]
        running = [_name(e) for e in queue.iter_active()]
        succeeded, failed, lock_errors = [], [], []
        done = [(r, True) for r in queue.iter_success()] + [(r, False) for r in queue.iter_failed()]
        for result, ok in done:
            entry = result.entry
            log = _log_path(queue, entry)
            text = log.read_text(errors="replace") if log is not None and log.exists() else ""
            if any(marker in text for marker in LOCK_ERRORS):
                lock_errors.append(_name(entry))
            if ok:
                succeeded.append(_name(entry))
            else:
                tail = text.strip().splitlines()[-TAIL_LINES:]
                failed.append({"name": _name(entry), "rev": entry.stash_rev,
                               "log": str(log) if log is not None and log.exists() else None, "tail": tail})
    return {"queued": queued, "running": running, "succeeded": succeeded, "failed": failed,
            "lock_errors": lock_errors}


def run(params: Params, repo: str = ".") -> int:
    state = status(repo)
    print(f"queue: {len(state['succeeded'])} succeeded, {len(state['failed'])} failed, "
          f"{len(state['running'])} running, {len(state['queued'])} queued")
    for failure in state["failed"]:
        where = failure["log"] or "no log kept (it failed while DVC set it up: see `dvc queue logs`)"
        print(f"FAILED {failure['name']} ({failure['rev'][:7]}): log kept at {where}")
        for line in failure["tail"]:
            print(f"    {line}")
        print(f"  full log: dvc queue logs {failure['name']}")
    for name in state["lock_errors"]:
        print(f"LOCK ERROR in the log of {name}: experiments collided on a DVC lock", file=sys.stderr)
    return 1 if state["failed"] or state["lock_errors"] else 0
