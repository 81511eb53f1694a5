"""A train stage killed with SIGKILL in mid-task resumes: through the real `dvc repro` and a real
`synthmix train`, killed for real, and run again, it ends with the same weights and loss curves as
an uninterrupted run, bit for bit, without retraining the task that had finished."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from dvc_repo import make_repo, sh
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

TASKS = ["math", "factual"]
SETTINGS = {
    "prepare": {"train_size": 96, "test_size": 12}, "tasks": TASKS, "tokenizer": {"vocab_size": 400},
    "pretrain": {"passes": 0.05, "batch_size": 16, "max_length": 256, "repeats": {}},
    # 2 epochs of 12 steps, a checkpoint every 8: at 8 (epoch 1) and 16 (epoch 2); tasks one after the other
    "train": {"epochs": 2, "batch_size": 8, "checkpoint_every": 8}, "threads": 1, "workers": 1,
    "iterations": {"iter1": {"id": 1, "prev": 0}},
}
SCRATCH = ".synthmix/scratch/train/iter0"


def _kill_when(repo: Path, cmd: list[str], pattern: str, timeout_s: float = 300) -> str:
    """Start `cmd` in its own session; SIGKILL the whole group once a path matches `pattern`."""
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout_s
    try:
        while time.time() < deadline:
            hits = glob.glob(str(repo / pattern))
            if hits:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return hits[0]
            if proc.poll() is not None:
                raise AssertionError(f"{cmd} ended (exit {proc.returncode}) before {pattern} appeared")
            time.sleep(0.02)
        raise AssertionError(f"{pattern} did not appear in {timeout_s} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _weights(directory: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {t: load_file(directory / t / "model.safetensors") for t in TASKS}


def _curves(directory: Path) -> dict[str, str]:
    return {t: (directory / t / "plots/metrics/loss.tsv").read_text() for t in TASKS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The stage's inputs, and an uninterrupted run's models and curves."""
    repo = make_repo(tmp_path_factory.mktemp("resume"), SETTINGS)
    sh(repo, "dvc", "repro", "baseline_mix", "tokenizer")
    sh(repo, "synthmix", "train", "--iteration", "0")
    ref = repo.parent / "reference"
    shutil.copytree(repo / "models/iter0", ref / "models")
    shutil.copytree(repo / "metrics/train/iter0", ref / "curves")
    assert not (repo / ".synthmix").exists()  # a finished stage leaves no scratch space
    shutil.rmtree(repo / "models/iter0")
    shutil.rmtree(repo / "metrics/train/iter0")
    return repo, ref


def test_a_sigkilled_train_stage_resumes_to_the_same_weights(reference):
    repo, ref = reference
    # kill `dvc repro` (and the train stage under it) once math has finished and factual has its
    # checkpoint in the second epoch (which starts at step 13)
    killed_at = _kill_when(repo, ["dvc", "repro", "baseline_train"], f"{SCRATCH}/factual-*/step-16")
    assert glob.glob(str(repo / SCRATCH / "math-*/done/summary.json"))
    assert not (repo / "models/iter0/training.json").exists()  # the stage did not finish
    # the checkpoint space is not a DVC output: git and DVC don't see it
    assert ".synthmix" not in sh(repo, "git", "status", "--porcelain").stdout
    out = sh(repo, "dvc", "repro", "baseline_train").stdout
    assert "iter0/math: finished before the stage was interrupted; restored, not retrained" in out
    assert f"iter0/factual: resuming from {Path(killed_at).relative_to(repo)}" in out
    got, want = _weights(repo / "models/iter0"), _weights(ref / "models")
    for task in TASKS:
        assert got[task].keys() == want[task].keys()
        assert all(torch.equal(got[task][k], want[task][k]) for k in want[task]), task  # bit for bit
    assert _curves(repo / "metrics/train/iter0") == _curves(ref / "curves")
    assert not (repo / ".synthmix").exists()  # cleared when the stage completed
    assert "baseline_train" not in sh(repo, "dvc", "status").stdout  # the lock records the finished stage


def test_a_changed_setting_does_not_resume_a_stale_checkpoint(reference, monkeypatch):
    """The scratch key covers what the result depends on: another learning rate, seed or training set
    is another directory, and the stale one is removed; the checkpoint interval is not part of it."""
    from synthmix.params import load_params
    from synthmix.train import scratch_dir

    repo, _ = reference
    monkeypatch.chdir(repo)
    params = load_params()
    first = scratch_dir(params, 0, "math")
    first.mkdir(parents=True)
    assert scratch_dir(params, 0, "math") == first and first.exists()
    other = params.model_copy(update={"train": params.train.model_copy(update={"checkpoint_every": 3})})
    assert scratch_dir(other, 0, "math") == first
    for changed in (params.model_copy(update={"seed": 1}),
                    params.model_copy(update={"train": params.train.model_copy(update={"learning_rate": 3e-3})})):
        assert scratch_dir(changed, 0, "math") != first
        assert not first.exists()  # the stale checkpoint is gone
        first = scratch_dir(params, 0, "math")
        first.mkdir(parents=True)
    mixed = repo / "data/mixed/iter0/math.jsonl"
    mixed.write_text(mixed.read_text().replace("1", "2", 1))
    assert scratch_dir(params, 0, "math") != first
    shutil.rmtree(repo / ".synthmix")
