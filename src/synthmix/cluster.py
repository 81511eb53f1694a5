"""`synthmix sweep`: a grid of experiments, on this machine through DVC's queue, or on a Slurm cluster
with one job per grid cell, the results gathered through the team's git and DVC remotes.

The grid is written as users already write it for `dvc exp run`: ``-S ratio=0,0.1,0.2 -S seed=0,1``
is six cells. On Slurm (``--on slurm``) each cell is one `sbatch` job that:

1. clones the team's git remote at the submitted commit into a temporary directory of its own,
   so no two jobs share a working tree or a DVC lock;
2. fetches the DVC remote's run-cache (`dvc fetch --run-cache`), so the stages another cell already
   ran (the baseline and iteration 1's synthetic data of its size and seed) are restored, not rerun;
3. runs `dvc exp run --pull -n <cell> -S ...` with the cell's params;
4. pushes the experiment and the run-cache back (`dvc exp push --run-cache`, `dvc push --run-cache`),
   where teammates' results already arrive: `dvc exp pull` brings it, `synthmix report` reads it.

Cells that share their upstream stages (the same params but `ratio`) form a group; the first cell of
each group runs first and the others wait for it (`--dependency=afterany`), so the shared stages run
once and reach the others through the run-cache. Every job's log is kept under
``.synthmix/sweeps/<sweep>/`` (printed at submission; the folder must be one the nodes can write,
as `sbatch --output` requires), beside a status file the job writes when it ends. `--status` reads
the scheduler (squeue, scontrol), those files and the git remote; `--retry-failed` resubmits the
cells that failed, were cancelled, timed out or were lost.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthmix.params import Params
from synthmix.verdict_memo import MEMO_ENV

SWEEPS = Path(".synthmix") / "sweeps"
#: keys no shared upstream stage reads: cells differing only in these share their upstream stages
DOWNSTREAM_KEYS = ("ratio",)
#: scheduler states after which a cell can be resubmitted
RETRYABLE = {"failed", "cancelled", "timeout", "preempted", "node_fail", "out_of_memory", "lost"}


class SweepError(RuntimeError):
    """A sweep that cannot be submitted or read; the message says what to do."""


# ----- the grid ---------------------------------------------------------------------------------

def _split_values(text: str) -> list[str]:
    """`0,0.1,[a,b]` -> ['0', '0.1', '[a,b]']: commas inside brackets belong to the value."""
    values, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += ch
    values.append(current)
    return values


def expand(sets: list[str]) -> list[dict[str, str]]:
    """The grid's cells, in order: `-S key=v1,v2` sweeps a key, `-S key=v` fixes it."""
    axes: list[tuple[str, list[str]]] = []
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text:
            raise SweepError(f"-S {item!r}: expected key=value or key=v1,v2,... (e.g. -S ratio=0,0.1,0.2)")
        if any(k == key for k, _ in axes):
            raise SweepError(f"-S {key} is given twice; list its values once: -S {key}=a,b")
        values = [v.strip() for v in _split_values(text)]
        if any(not v for v in values):
            raise SweepError(f"-S {item!r}: an empty value")
        axes.append((key, values))
    if not axes:
        raise SweepError("a sweep needs at least one -S key=values (e.g. -S ratio=0,0.1,0.2 -S seed=0,1)")
    return [dict(zip([k for k, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


def cell_name(sweep: str, overrides: dict[str, str], index: int) -> str:
    """A git-ref-safe experiment name: `<sweep>-ratio0.1-seed1`, or `<sweep>-<index>` if that is long."""
    parts = [re.sub(r"[^A-Za-z0-9._-]+", "", f"{k.split('.')[-1]}{v}") for k, v in overrides.items()]
    name = "-".join([sweep, *parts]).strip(".-")
    return name if len(name) <= 80 and ".." not in name else f"{sweep}-{index:03d}"


def _set_args(overrides: dict[str, str]) -> list[str]:
    """A cell's params as `dvc exp run` options: -S key=value ..."""
    return [a for k, v in overrides.items() for a in ("-S", f"{k}={v}")]


def group_of(overrides: dict[str, str]) -> str:
    """Cells with the same group share every stage upstream of `ratio`."""
    shared = {k: v for k, v in overrides.items() if k not in DOWNSTREAM_KEYS}
    return json.dumps(shared, sort_keys=True)


# ----- state -------------------------------------------------------------------------------------

@dataclass
class Cell:
    name: str
    overrides: dict[str, str]
    group: str
    jobs: list[str] = field(default_factory=list)  # every submission's job id, the latest last
    logs: list[str] = field(default_factory=list)

    @property
    def job(self) -> str | None:
        return self.jobs[-1] if self.jobs else None


@dataclass
class Sweep:
    name: str
    commit: str
    git_remote: str      # the URL jobs clone from and push to
    dvc_remote: str | None
    resources: dict[str, Any]
    python: str
    cells: list[Cell]

    @property
    def folder(self) -> Path:
        return SWEEPS / self.name

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / "sweep.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.folder / "sweep.json")

    @classmethod
    def load(cls, name: str) -> Sweep:
        path = SWEEPS / name / "sweep.json"
        if not path.exists():
            known = sorted(p.name for p in SWEEPS.glob("*") if (p / "sweep.json").exists()) if SWEEPS.exists() else []
            raise SweepError(f"no sweep named {name!r} here ({path} is missing); sweeps: {known or 'none'}")
        return cls.read(path)

    @classmethod
    def read(cls, path: Path) -> Sweep:
        raw = json.loads(path.read_text())
        return cls(**{**raw, "cells": [Cell(**c) for c in raw["cells"]]})


# ----- git and DVC around the submitting repository --------------------------------------------------

def _run(cmd: list[str], cwd: str | Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SweepError(f"`{shlex.join(cmd)}` failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc


def _preflight(git_remote: str, dvc_remote: str | None) -> tuple[str, str, str | None]:
    """(HEAD commit, the git remote's URL, the DVC remote) after checking that a job's clone gets
    everything it needs: a clean tree, HEAD on the git remote, a DVC remote in the committed config."""
    if _run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip():
        raise SweepError("the working tree has uncommitted changes: commit them (each job runs the committed "
                         "code and params.yaml, plus its cell's -S values)")
    commit = _run(["git", "rev-parse", "HEAD"]).stdout.strip()
    url = _run(["git", "remote", "get-url", git_remote], check=False)
    if url.returncode != 0:
        raise SweepError(f"no git remote {git_remote!r}: jobs clone from it and push their experiments to it "
                         f"(git remote add {git_remote} <url>, or --git-remote NAME)")
    url_text = url.stdout.strip()
    heads = _run(["git", "ls-remote", git_remote], check=False)
    if heads.returncode != 0:
        raise SweepError(f"git remote {git_remote!r} ({url_text}) cannot be read: {heads.stderr.strip()}")
    reachable = _run(["git", "branch", "-r", "--contains", commit], check=False).stdout
    if not any(line.strip().startswith(f"{git_remote}/") for line in reachable.splitlines()):
        raise SweepError(f"commit {commit[:7]} is not on git remote {git_remote!r}: `git push {git_remote}` it "
                         "first (each job clones it from there)")
    if not os.path.isabs(url_text) and "://" not in url_text and ":" not in url_text:
        url_text = str(Path(url_text).resolve())  # a relative path: absolute for the jobs' own cwd
    committed = _run(["dvc", "config", "--project", "core.remote"], check=False).stdout.strip()
    remote = dvc_remote or committed
    if not remote:
        raise SweepError("no default DVC remote in the committed .dvc/config: jobs fetch the run-cache from it and "
                         "push their outputs to it (dvc remote add -d --project NAME URL, then commit)")
    listed = _run(["dvc", "remote", "list", "--project"], check=False).stdout
    if remote not in [line.split()[0] for line in listed.splitlines() if line.strip()]:
        raise SweepError(f"DVC remote {remote!r} is not in the committed .dvc/config (a remote only in "
                         ".dvc/config.local does not reach the jobs' clones)")
    return commit, url_text, remote


# ----- Slurm ---------------------------------------------------------------------------------------

def _sbatch_script(sweep: Sweep, cell: Cell, log: Path, dependency: str | None) -> str:
    res = sweep.resources
    lines = ["#!/bin/bash", f"#SBATCH --job-name={cell.name}", f"#SBATCH --output={log}",
             f"#SBATCH --cpus-per-task={res['cpus_per_task']}"]
    for key, flag in (("partition", "partition"), ("time", "time"), ("mem", "mem")):
        if res.get(key):
            lines.append(f"#SBATCH --{flag}={res[key]}")
    if res.get("gpus"):
        lines.append(f"#SBATCH --gpus={res['gpus']}")
    if dependency:
        lines.append(f"#SBATCH --dependency=afterany:{dependency}")
    state = (sweep.folder / "sweep.json").resolve()
    lines.append(f"exec {shlex.quote(sweep.python)} -m synthmix.cluster cell {shlex.quote(str(state))} {shlex.quote(cell.name)}")
    return "\n".join(lines) + "\n"


def _submit(sweep: Sweep, cell: Cell, dependency: str | None) -> str:
    attempt = len(cell.jobs) + 1
    log = (sweep.folder / f"{cell.name}.{attempt}.log").resolve()
    script = sweep.folder / f"{cell.name}.{attempt}.sbatch"
    script.write_text(_sbatch_script(sweep, cell, log, dependency))
    proc = _run(["sbatch", "--parsable", str(script)], check=False)
    if proc.returncode != 0:
        raise SweepError(f"sbatch refused {cell.name}: {proc.stderr.strip() or proc.stdout.strip()} "
                         "(is this a Slurm login node? SLURM_CONF?)")
    job = proc.stdout.strip().split(";")[0]
    cell.jobs.append(job)
    cell.logs.append(str(log))
    _status_file(sweep, cell).unlink(missing_ok=True)
    return job


def _status_file(sweep: Sweep, cell: Cell) -> Path:
    return sweep.folder / f"{cell.name}.status.json"


def _scheduler_state(job: str) -> str | None:
    """The job's state as Slurm knows it (lower-case: pending, running, completed, cancelled...), None
    when Slurm has forgotten it."""
    queued = _run(["squeue", "-h", "-j", job, "-o", "%T"], check=False)
    if queued.returncode == 0 and queued.stdout.strip():
        return queued.stdout.strip().split()[0].lower()
    shown = _run(["scontrol", "show", "job", job], check=False)
    m = re.search(r"JobState=(\w+)", shown.stdout) if shown.returncode == 0 else None
    return m.group(1).lower() if m else None


def cell_state(sweep: Sweep, cell: Cell, remote_exps: set[str]) -> str:
    """pending, running, done or a failure state (failed, cancelled, timeout, ..., lost)."""
    if cell.job is None:
        return "done" if cell.name in remote_exps else "unsubmitted"
    scheduler = _scheduler_state(cell.job)
    if scheduler in ("pending", "configuring", "running", "completing", "suspended", "requeued", "resizing"):
        return "running" if scheduler in ("running", "completing", "configuring") else "pending"
    status_file = _status_file(sweep, cell)
    if status_file.exists():
        own = json.loads(status_file.read_text()).get("state")
        if own == "done":
            return "done" if cell.name in remote_exps else "lost"  # it said done: the remote must hold it
        return "failed"
    if scheduler and scheduler != "completed":
        return scheduler  # cancelled, timeout, preempted, node_fail, out_of_memory, failed
    return "done" if cell.name in remote_exps else "lost"


def _remote_experiments(sweep: Sweep) -> set[str]:
    """Names of the experiments on the git remote (refs/exps/.../<name>)."""
    proc = _run(["git", "ls-remote", sweep.git_remote, "refs/exps/*"], check=False)
    return {line.rsplit("/", 1)[-1] for line in proc.stdout.splitlines() if line.strip()}


def submit(sweep: Sweep, cells: list[Cell]) -> None:
    """Submit `cells`: each group's first cell (in grid order) first, the others after it."""
    firsts: dict[str, str] = {}
    for cell in sweep.cells:  # a group whose first cell is still queued or running keeps it first
        if cell not in cells and cell.job and cell.group not in firsts:
            if _scheduler_state(cell.job) in ("pending", "running", "configuring", "completing"):
                firsts[cell.group] = cell.job
    for cell in cells:
        job = _submit(sweep, cell, firsts.get(cell.group))
        firsts.setdefault(cell.group, job)
        sweep.save()
        after = f" after job {firsts[cell.group]}" if firsts[cell.group] != job else ""
        print(f"submitted {cell.name} as Slurm job {job}{after}; log: {cell.logs[-1]}")


def status(name: str) -> list[dict[str, Any]]:
    sweep = Sweep.load(name)
    remote = _remote_experiments(sweep)
    return [{"cell": c.name, "params": c.overrides, "state": cell_state(sweep, c, remote), "job": c.job,
             "log": c.logs[-1] if c.logs else None} for c in sweep.cells]


def print_status(name: str) -> int:
    rows = status(name)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    print(f"sweep {name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for row in rows:
        shown = " ".join(f"{k}={v}" for k, v in row["params"].items())
        print(f"  {row['state']:<11} {row['cell']:<36} job {row['job'] or '-':<8} {shown}   log: {row['log'] or '-'}")
    failed = [r for r in rows if r["state"] in RETRYABLE]
    if failed:
        print(f"{len(failed)} cell(s) to resubmit: synthmix sweep --name {name} --retry-failed")
    return 1 if failed else 0


# ----- inside a job ---------------------------------------------------------------------------------

def run_cell(state_path: str, name: str) -> int:
    """One grid cell, run inside its Slurm job (see the module docstring); writes its status file."""
    sweep_dir = Path(state_path).parent  # absolute: the job's cwd is not the repository's
    sweep = Sweep.read(Path(state_path))
    cell = next(c for c in sweep.cells if c.name == name)
    status_file = sweep_dir / f"{name}.status.json"
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix=f"synthmix-{name}-", dir=os.environ.get("SYNTHMIX_SCRATCH") or None))
    repo = work / "repo"
    job = os.environ.get("SLURM_JOB_ID", "")
    print(f"synthmix sweep cell {name} (job {job}): {cell.overrides} in {repo}", flush=True)
    remote = ["-r", sweep.dvc_remote] if sweep.dvc_remote else []
    memo_dir = Path(tempfile.mkdtemp(prefix=f"synthmix-{name}-memo-"))  # the node's own disk, 0700
    env = cell_env(os.environ, memo_dir)
    steps = [
        ("clone", ["git", "clone", "-q", sweep.git_remote, str(repo)]),
        ("checkout", ["git", "checkout", "-q", "--detach", sweep.commit]),
        ("fetch run-cache", ["dvc", "fetch", "--run-cache", *remote]),
        ("exp run", ["dvc", "exp", "run", "--pull", "-n", name, *_set_args(cell.overrides)]),
        ("exp push", ["dvc", "exp", "push", "--run-cache", *remote, sweep.git_remote, name]),
        ("push run-cache", ["dvc", "push", "--run-cache", *remote]),
    ]
    try:
        for step, cmd in steps:
            print(f"--- {step}: {shlex.join(cmd)}", flush=True)
            proc = subprocess.run(cmd, cwd=repo if step != "clone" else work, env=env)
            if proc.returncode != 0:
                status_file.write_text(json.dumps({"state": "failed", "step": step, "returncode": proc.returncode,
                                                   "job": job, "workspace": str(repo),
                                                   "seconds": time.time() - started}))
                print(f"synthmix sweep cell {name}: {step} failed ({proc.returncode}); workspace kept at {repo}",
                      flush=True)
                return proc.returncode or 1
    finally:
        shutil.rmtree(memo_dir, ignore_errors=True)
    status_file.write_text(json.dumps({"state": "done", "job": job, "seconds": time.time() - started}))
    shutil.rmtree(work, ignore_errors=True)
    print(f"synthmix sweep cell {name}: done in {time.time() - started:.0f}s", flush=True)
    return 0


def cell_env(environ: Any, memo_dir: Path) -> dict[str, str]:
    """A cell's environment: the job's, with the code judge's verdict memo (synthmix.verdict_memo) in
    `memo_dir` on the node's own disk, unless `SYNTHMIX_JUDGE_MEMO` already says where (or `off`).
    A cluster's home is often NFS, where SQLite's WAL mode does not work; the memo pays within one
    cell already (each iteration's code answers repeat the last one's)."""
    env = dict(environ)
    env.setdefault(MEMO_ENV, str(memo_dir / "judge-memo.sqlite"))
    return env


# ----- the verb -------------------------------------------------------------------------------------

def _local(grid: list[dict[str, str]], name: str, jobs: int, start: bool) -> int:
    """`--on local`: DVC's own queue on this machine (`dvc exp run --queue`, `dvc queue start`)."""
    for i, overrides in enumerate(grid):
        cmd = ["dvc", "exp", "run", "--queue", "-n", cell_name(name, overrides, i), *_set_args(overrides)]
        _run(cmd)
        print(f"queued {cmd[5]}: " + " ".join(f"{k}={v}" for k, v in overrides.items()))
    if not start:
        print("queued only: `dvc queue start -j N` runs them")
        return 0
    # the queue's workers outlive `dvc queue start` and inherit its output: give them no pipe to hold
    subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"started DVC's queue with {jobs} worker(s): `synthmix queue` shows where it stands")
    return 0


def run(params: Params, set_param: list[str] | None = None, on: str = "local", name: str | None = None,
        status: bool = False, retry_failed: bool = False, git_remote: str = "origin", remote: str | None = None,
        partition: str | None = None, cpus_per_task: int | None = None, gpus: int | None = None,
        time_limit: str | None = None, mem: str | None = None, jobs: int = 2, queue_only: bool = False,
        dry_run: bool = False) -> int:
    try:
        if status or retry_failed:
            if not name:
                raise SweepError("--status and --retry-failed need --name SWEEP (the name given at submission)")
            if retry_failed:
                sweep = Sweep.load(name)
                remote_exps = _remote_experiments(sweep)
                todo = [c for c in sweep.cells if cell_state(sweep, c, remote_exps) in RETRYABLE | {"unsubmitted"}]
                if not todo:
                    print(f"sweep {name}: nothing to resubmit")
                else:
                    submit(sweep, todo)
                return 0
            return print_status(name)
        grid = expand(set_param or [])
        name = name or time.strftime("sweep%Y%m%d-%H%M%S")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise SweepError(f"--name {name!r}: letters, digits, '.', '_' and '-' only (it names experiments)")
        if on == "local":
            return _local(grid, name, jobs, start=not queue_only)
        if (SWEEPS / name / "sweep.json").exists():
            raise SweepError(f"a sweep named {name!r} exists: `--name {name} --status`, or pick another name")
        cfg = params.sweep
        resources = {"partition": partition or cfg.partition, "cpus_per_task": cpus_per_task or cfg.cpus_per_task,
                     "gpus": cfg.gpus if gpus is None else gpus, "time": time_limit or cfg.time, "mem": mem or cfg.mem}
        commit, url, dvc_remote = _preflight(git_remote, remote)
        cells = [Cell(cell_name(name, o, i), o, group_of(o)) for i, o in enumerate(grid)]
        if len({c.name for c in cells}) != len(cells):
            raise SweepError("two cells got the same name; give values that differ in more than punctuation")
        sweep = Sweep(name, commit, url, dvc_remote, resources, sys.executable, cells)
        if dry_run:
            for cell in cells:
                print(f"# {cell.name}\n{_sbatch_script(sweep, cell, sweep.folder / f'{cell.name}.1.log', None)}")
            return 0
        if not shutil.which("sbatch"):
            raise SweepError("sbatch not found: --on slurm runs on a Slurm login node (or --on local)")
        sweep.save()
        print(f"sweep {name}: {len(cells)} cells at commit {commit[:7]}, {len({c.group for c in cells})} shared "
              f"upstream group(s); logs and state in {sweep.folder}")
        submit(sweep, cells)
        print(f"status: synthmix sweep --name {name} --status; results: dvc exp pull {git_remote} --all-commits")
        return 0
    except SweepError as err:
        print(f"synthmix sweep: {err}", file=sys.stderr)
        return 2


def main(argv: list[str]) -> int:
    """`python -m synthmix.cluster cell STATE NAME`: what a job runs."""
    if len(argv) == 3 and argv[0] == "cell":
        return run_cell(argv[1], argv[2])
    print("usage: python -m synthmix.cluster cell SWEEP_JSON CELL_NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
