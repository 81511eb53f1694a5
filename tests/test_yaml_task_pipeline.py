"""A YAML task on a local JSONL through `dvc exp run`: the README's "Your own task" example, run as
written (its bash block, verbatim) in a fresh project at tiny sizes, then checked stage by stage."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from dvc_repo import ROOT, TINY, make_repo, sh

pytestmark = pytest.mark.slow


def readme_example() -> str:
    """The bash block of README.md's "Your own task" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Your own task", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("yaml_task"), {**TINY, "tasks": ["factual"],
                                                           "iterations": {"iter1": {"id": 1, "prev": 0}}})
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_example()], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return repo, proc.stdout + proc.stderr


def _metrics(repo, path):
    return json.loads((repo / path).read_text())


def test_the_readme_example_runs_every_stage(study):
    repo, out = study
    assert "capitals: 16 train / 4 test" in out
    for it in (0, 1):
        scores = _metrics(repo, f"metrics/iterations/iter{it}.json")["capitals"]
        assert scores["n_test"] == 4
        assert scores["score"] == scores["exact_match"] == scores["exact_match,strip"]
        for key in ("ece", "ece_10", "ece_15", "self_bleu", "distinct_1", "distinct_2", "mean_confidence"):
            assert 0.0 <= scores[key] <= 1.0, key
    source = _metrics(repo, "data/external/capitals/source.json")
    assert source["source"] == "yaml" and source["train"]["split"] == "train[:80%]" and source["test"]["split"] == "train[80%:]"
    assert source["train"]["yaml"] == "configs/tasks/capitals/capitals.yaml"
    external = _metrics(repo, "metrics/external.json")["capitals"]
    assert (external["train"], external["test"]) == (16, 4)


def test_synthetic_samples_are_cut_at_until_and_validated(study):
    repo, _ = study
    rows = [json.loads(line) for line in (repo / "data/synthetic/raw/iter1/capitals.jsonl").read_text().splitlines()]
    assert len(rows) == 16
    assert all("\n" not in r["completion"] for r in rows)  # generation_kwargs.until: ["\n"]
    assert {r["origin"]["source_id"] for r in rows} == {f"capitals-train-{i:06d}" for i in range(16)}
    validation = _metrics(repo, "metrics/validation/iter1.json")["capitals"]
    assert 0.0 <= validation["synthetic_accuracy"] <= 1.0
    report = _metrics(repo, "data/synthetic/validated/iter1/report.json")["capitals"]
    checked = {e["column"] for e in report["expectations"] if e.get("column")}
    assert {"non_empty_answer", "answer_passes_filter"} <= checked
    assert (repo / "data/synthetic/validated/iter1/capitals.card.md").exists()


def test_dvc_metrics_and_report_see_the_task(study):
    repo, _ = study
    shown = sh(repo, "dvc", "metrics", "show", "--json").stdout
    assert "capitals" in shown and "exact_match,strip" in shown
    sh(repo, "synthmix", "report", "--out", "reports/y")
    report = _metrics(repo, "reports/y/report.json")
    assert "capitals" in report["tasks"] and report["task_groups"]["capitals"] is None


def test_an_unsupported_key_stops_the_run_at_params_validation(study):
    """The first stage the changed YAML reruns (prepare) stops while validating params, naming the
    file and the key; no later stage runs, and what DVC set aside comes back with `dvc checkout`."""
    repo, _ = study
    yaml_file = repo / "configs/tasks/capitals/capitals.yaml"
    good = yaml_file.read_text()
    before = (repo / "metrics/external.json").read_text()
    try:
        for bad, message in (("process_results: !function utils.process_results\n", "capitals.yaml: (YAML): "),
                             ("num_fewshot: 3\n", "capitals.yaml: num_fewshot: 3 is not supported")):
            yaml_file.write_text(good + bad)
            proc = sh(repo, "dvc", "exp", "run", check=False)
            out = proc.stdout + proc.stderr
            assert proc.returncode != 0 and message in out, out[-2000:]
            assert "synthmix prepare: params.yaml is invalid" in out
            assert "Running stage 'tokenizer'" not in out
    finally:
        yaml_file.write_text(good)
    sh(repo, "dvc", "checkout")
    assert (repo / "metrics/external.json").read_text() == before
