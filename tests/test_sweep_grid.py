"""`synthmix sweep` without a cluster: the grid, cell names and groups, and the checks that stop a
submission whose jobs could not get what they need (tests/test_slurm_sweep.py runs it on Slurm)."""

from __future__ import annotations

import subprocess

import pytest

from dvc_repo import TINY, make_repo, sh
from synthmix.cluster import SweepError, cell_name, expand, group_of


def test_the_grid_is_the_product_in_order():
    assert expand(["ratio=0,0.5", "seed=0,1"]) == [
        {"ratio": "0", "seed": "0"}, {"ratio": "0", "seed": "1"},
        {"ratio": "0.5", "seed": "0"}, {"ratio": "0.5", "seed": "1"}]
    # a list value keeps its commas; a single value fixes the key
    assert expand(["tasks=[math,code],[factual]", "model=small"]) == [
        {"tasks": "[math,code]", "model": "small"}, {"tasks": "[factual]", "model": "small"}]


@pytest.mark.parametrize("sets, message", [
    ([], "at least one -S"),
    (["ratio"], "expected key=value"),
    (["ratio=0,,1"], "an empty value"),
    (["ratio=0", "ratio=1"], "-S ratio is given twice"),
])
def test_bad_grids_say_how_to_write_them(sets, message):
    with pytest.raises(SweepError, match=message):
        expand(sets)


def test_cells_sharing_upstream_stages_share_a_group():
    a, b, c = {"ratio": "0", "seed": "1"}, {"ratio": "0.5", "seed": "1"}, {"ratio": "0", "seed": "2"}
    assert group_of(a) == group_of(b) != group_of(c)
    assert cell_name("grid", b, 1) == "grid-ratio0.5-seed1"
    assert cell_name("grid", {"train.learning_rate": "1e-3"}, 0) == "grid-learning_rate1e-3"
    assert cell_name("grid", {"tasks": "[math,code]"}, 3) == "grid-tasksmathcode"
    assert cell_name("g", {"x": "y" * 100}, 7) == "g-007"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep_checks")
    origin = tmp / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo = make_repo(tmp, {**TINY, "tasks": ["math"]})
    sh(repo, "git", "remote", "add", "origin", str(origin))
    return repo


def _sweep(repo, *args):
    return sh(repo, "synthmix", "sweep", "-S", "ratio=0,0.5", "--on", "slurm", "--name", "s", *args, check=False)


def test_a_submission_checks_what_each_job_needs(repo, tmp_path):
    proc = _sweep(repo, "--dry-run")
    assert proc.returncode == 2 and "commit" in proc.stderr and "is not on git remote 'origin'" in proc.stderr
    sh(repo, "git", "push", "-q", "origin", "main")
    proc = _sweep(repo, "--dry-run")
    assert proc.returncode == 2 and "no default DVC remote in the committed .dvc/config" in proc.stderr
    sh(repo, "dvc", "remote", "add", "--local", "-d", "mine", str(tmp_path / "store"))
    proc = _sweep(repo, "--dry-run")
    assert proc.returncode == 2 and "no default DVC remote in the committed" in proc.stderr
    sh(repo, "dvc", "remote", "remove", "--local", "mine")
    sh(repo, "dvc", "remote", "add", "-d", "team", str(tmp_path / "store"))
    proc = _sweep(repo, "--dry-run")
    assert proc.returncode == 2 and "uncommitted changes" in proc.stderr
    sh(repo, "git", "commit", "-qam", "team remote")
    sh(repo, "git", "push", "-q", "origin", "main")
    proc = _sweep(repo, "--dry-run", "--cpus-per-task", "3", "--time", "01:00:00", "--gpus", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("#!/bin/bash") == 2
    for line in ("#SBATCH --cpus-per-task=3", "#SBATCH --time=01:00:00", "#SBATCH --gpus=1",
                 "#SBATCH --job-name=s-ratio0.5", "-m synthmix.cluster cell"):
        assert line in proc.stdout
    assert not (repo / ".synthmix/sweeps/s").exists()  # a dry run writes nothing


def test_status_of_an_unknown_sweep_names_the_known_ones(repo):
    proc = sh(repo, "synthmix", "sweep", "--name", "nope", "--status", check=False)
    assert proc.returncode == 2 and "no sweep named 'nope'" in proc.stderr
    proc = sh(repo, "synthmix", "sweep", "--status", check=False)
    assert proc.returncode == 2 and "need --name" in proc.stderr
