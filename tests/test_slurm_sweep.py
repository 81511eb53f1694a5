"""`synthmix sweep --on slurm` on a real one-node Slurm cluster (tests/slurm_cluster.py), against a bare
git remote and a local DVC remote: a 2-ratio x 2-seed sweep at tiny settings runs as four Slurm jobs,
one of them is killed and resubmitted with --retry-failed, and another clone gathers all four
experiments with `dvc exp pull` and reports on them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from dvc_repo import TINY, make_repo, sh
from slurm_cluster import cluster, missing

pytestmark = pytest.mark.slow

SETTINGS = {**TINY, "tasks": ["math"], "iterations": {"iter1": {"id": 1, "prev": 0}}}
GRID = ["-S", "ratio=0,0.5", "-S", "seed=0,1"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    why = missing()
    if why:
        if os.environ.get("SYNTHMIX_SLURM_TESTS") == "required":  # .ci/run installs Slurm: no skipping there
            pytest.fail(f"SYNTHMIX_SLURM_TESTS=required but no Slurm cluster can start: {why}")
        pytest.skip(why)
    with cluster(tmp_path_factory.mktemp("slurm")) as env, pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="module")
def team(tmp_path_factory, slurm):
    """A study whose HEAD is on a bare git remote, with a local DVC remote in its committed config."""
    tmp = tmp_path_factory.mktemp("team")
    origin, storage = tmp / "origin.git", tmp / "storage"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo = make_repo(tmp, SETTINGS)
    sh(repo, "dvc", "remote", "add", "-d", "team", str(storage))
    sh(repo, "git", "add", ".dvc/config")
    sh(repo, "git", "commit", "-qm", "team remote")
    sh(repo, "git", "remote", "add", "origin", str(origin))
    sh(repo, "git", "push", "-q", "-u", "origin", "main")
    return repo, origin


def _status(repo: Path, name: str) -> dict[str, str]:
    """cell -> state, as `synthmix sweep --status` prints them."""
    out = sh(repo, "synthmix", "sweep", "--name", name, "--status", check=False).stdout
    return {cell: state for state, cell in re.findall(r"^  (\S+)\s+(\S+)\s+job", out, re.M)}


def _wait(repo: Path, name: str, until, timeout: float = 900, every: float = 2) -> dict[str, str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = _status(repo, name)
        if until(states):
            return states
        time.sleep(every)
    raise AssertionError(f"sweep {name} still {states} after {timeout:.0f}s")


@pytest.fixture(scope="module")
def swept(team):
    """Submit the grid; kill the seed-1 group's second cell once it runs; --retry-failed it; wait."""
    repo, origin = team
    out = sh(repo, "synthmix", "sweep", *GRID, "--on", "slurm", "--name", "grid", "--cpus-per-task", "1").stdout
    assert out.count("submitted grid-") == 4
    victim = "grid-ratio0.5-seed1"
    states = _wait(repo, "grid", lambda s: s.get(victim) == "running" or s.get(victim) not in (None, "pending"))
    assert states[victim] == "running", states
    sweep = json.loads((repo / ".synthmix/sweeps/grid/sweep.json").read_text())
    job = next(c["jobs"][-1] for c in sweep["cells"] if c["name"] == victim)
    subprocess.run(["scancel", job], check=True)
    killed = _wait(repo, "grid", lambda s: s[victim] != "running")
    # resubmitted at once, while the other cells may still run: only the killed one goes again
    retry = sh(repo, "synthmix", "sweep", "--name", "grid", "--retry-failed")
    # the rest of the sweep takes minutes: poll less often (each status is a synthmix process and
    # a squeue per cell, CPU the jobs need)
    final = _wait(repo, "grid", lambda s: all(v not in ("pending", "running") for v in s.values()), every=10)
    return repo, origin, out, killed, retry.stdout, final, sweep


def test_the_grid_is_four_jobs_each_group_behind_its_first_cell(swept):
    repo, _, out, *_ = swept
    sweep = json.loads((repo / ".synthmix/sweeps/grid/sweep.json").read_text())
    cells = {c["name"]: c for c in sweep["cells"]}
    assert set(cells) == {"grid-ratio0-seed0", "grid-ratio0-seed1", "grid-ratio0.5-seed0", "grid-ratio0.5-seed1"}
    for seed in (0, 1):
        first, second = cells[f"grid-ratio0-seed{seed}"], cells[f"grid-ratio0.5-seed{seed}"]
        assert first["group"] == second["group"]
        script = (repo / f".synthmix/sweeps/grid/grid-ratio0.5-seed{seed}.1.sbatch").read_text()
        assert f"#SBATCH --dependency=afterany:{first['jobs'][0]}" in script
        assert "#SBATCH --cpus-per-task=1" in script
    assert "log: " in out and str(repo / ".synthmix/sweeps/grid") in out


def test_a_killed_job_is_seen_and_retry_failed_completes_the_sweep(swept):
    _, _, _, killed, retry, final, _ = swept
    assert killed["grid-ratio0.5-seed1"] == "cancelled"
    assert all(s in ("pending", "running", "done") for n, s in killed.items() if n != "grid-ratio0.5-seed1"), killed
    assert "submitted grid-ratio0.5-seed1" in retry and retry.count("submitted") == 1
    assert final == dict.fromkeys(final, "done") and len(final) == 4


def test_the_shared_baseline_of_each_seed_was_trained_once(swept):
    repo, *_ = swept
    logs = {p.name: p.read_text() for p in (repo / ".synthmix/sweeps/grid").glob("*.log")}
    for seed in (0, 1):
        group = {n: t for n, t in logs.items() if n.startswith(("grid-ratio0-seed%d." % seed, "grid-ratio0.5-seed%d." % seed))}
        trained = [n for n, t in group.items() if "Running stage 'baseline_train'" in t]
        assert trained == [f"grid-ratio0-seed{seed}.1.log"], (seed, trained)
        second = logs[f"grid-ratio0.5-seed{seed}.{2 if seed == 1 else 1}.log"]
        assert "Stage 'baseline_train' is cached - skipping run" in second


def test_another_clone_pulls_all_four_and_reports_on_them(swept, tmp_path):
    _, origin, *_ = swept
    clone = tmp_path / "b"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    sh(clone, "dvc", "exp", "pull", "--all-commits", "origin")
    shown = json.loads(sh(clone, "dvc", "exp", "show", "--json", "--all-commits").stdout)
    names = {exp["name"] for rev in shown for exp in (rev.get("experiments") or []) if exp.get("name")}
    assert names >= {"grid-ratio0-seed0", "grid-ratio0-seed1", "grid-ratio0.5-seed0", "grid-ratio0.5-seed1"}
    sh(clone, "synthmix", "report", "--out", "r")
    report = json.loads((clone / "r/report.json").read_text())
    assert sorted((r["ratio"], r["seed"]) for r in report["runs"]) == [(0.0, 0), (0.0, 1), (0.5, 0), (0.5, 1)]
    # the outputs came through the DVC remote too
    sh(clone, "dvc", "exp", "apply", "grid-ratio0.5-seed1")
    sh(clone, "dvc", "pull")
    assert (clone / "models/iter1/math/model.safetensors").exists()
