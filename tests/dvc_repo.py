"""Helpers for tests that drive the real `dvc` and `git` CLIs in temporary repositories."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "prepare": {"train_size": 48, "test_size": 12, "sizes": {}},  # sizes: every task at train_size
    "train": {"epochs": 1, "batch_size": 16},
    "generate": {"batch_size": 64},
    "evaluate": {"diversity_samples": 12, "batch_size": 32},
    "iterations": {"iter1": {"id": 1, "prev": 0}, "iter2": {"id": 2, "prev": 1}},
    "tokenizer": {"vocab_size": 400},
    # a few steps of pretraining: the stage's real code path, at a cost tests can pay (repeats off:
    # the default's 6x factual would cost them ~3.7x the documents)
    "pretrain": {"passes": 0.05, "batch_size": 16, "max_length": 256, "repeats": {}},
}


def sh(repo: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def offline(cmd: tuple[str, ...]) -> tuple[str, ...]:
    """Run `cmd` in a network namespace of its own (no network at all) where this user may."""
    if shutil.which("unshare") and os.geteuid() == 0:
        return ("unshare", "--net", *cmd)
    return cmd


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_repo(tmp: Path, overrides: dict) -> Path:
    repo = tmp / "study"
    repo.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "configs", repo / "configs")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(params.get(key), dict) and key != "iterations":
            params[key] = {**params[key], **value}
        else:
            params[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "core.analytics", "false")
    # as in the project's .dvc/config: `dvc plots show` pages that render with no internet
    sh(repo, "dvc", "config", "plots.html_template", "../configs/dvc_plots_page.html")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")  # dvc.yaml's custom plot templates
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "study")
    return repo
