"""End to end through the real `dvc` CLI, in a temporary git repository, on tiny settings.

Slow by nature (each stage is a real process that imports torch); kept to a few runs that each
check several things.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import yaml
from dvc_repo import TINY, make_repo, offline, ran_stages, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A repository where the tiny study has run once with `dvc exp run`."""
    repo = make_repo(tmp_path_factory.mktemp("pipeline"), {**TINY, "tasks": ["math", "commonsense"]})
    # with no network at all: nothing may wait on a hub or telemetry time-out
    first = sh(repo, *offline(("dvc", "exp", "run")))
    (repo / "first_run.log").write_text(first.stdout + first.stderr)
    return repo


def test_the_study_produces_every_versioned_output(study):
    for it in (0, 1, 2):
        for task in ("math", "commonsense"):
            assert (study / f"models/iter{it}/{task}/model.safetensors").exists()
            assert (study / f"data/predictions/iter{it}/{task}.jsonl").exists()
        scores = json.loads((study / f"metrics/iterations/iter{it}.json").read_text())
        assert set(scores) == {"math", "commonsense"}
        assert {"score", "score_se", "ece", "ece_10", "ece_15", "self_bleu", "distinct_1", "distinct_2"} <= set(scores["math"])
    # the base: pretrained once, loadable, and what phase 0 fine-tuned (same vocabulary and shape)
    base = study / "models/base/tiny"
    assert (base / "model.safetensors").exists() and (base / "tokenizer.json").exists()
    pretrained = json.loads((study / "metrics/pretrain/tiny.json").read_text())
    assert pretrained["steps"] >= 1 and set(pretrained["documents_per_family"]) == {
        "code", "commonsense", "factual", "math", "reading"}
    for it in (1, 2):
        assert (study / f"data/synthetic/raw/iter{it}/math.jsonl").exists()
        report = json.loads((study / f"metrics/validation/iter{it}.json").read_text())
        assert "math" in report
        mix = json.loads((study / f"metrics/mix/iter{it}.json").read_text())
        assert mix["math"]["synthetic"] == round(0.2 * 48)
    summary = json.loads((study / "metrics/summary.json").read_text())
    assert set(summary["math"]) == {"iter0", "iter1", "iter2"}


def test_metrics_and_plots_through_dvc(study):
    shown = json.loads(sh(study, "dvc", "metrics", "show", "--json").stdout)
    flat = json.dumps(shown)
    assert "metrics/iterations/iter2.json" in flat and '"ece_15"' in flat
    html = sh(study, "dvc", "plots", "show", "-o", "plots_html").stdout
    assert (study / "plots_html/index.html").exists(), html
    page = (study / "plots_html/index.html").read_text()
    for plot in ("metrics_curves_score_json", "metrics_curves_ece_json", "metrics_curves_reliability_json",
                 "metrics_curves_train_loss_json", "metrics_curves_synthetic_accuracy_json",
                 "metrics_pretrain_tiny_plots_metrics_loss_tsv"):
        assert plot in page
    # one reliability diagram per task and iteration, with the diagonal; training curves per task
    vega = json.loads(sh(study, "dvc", "plots", "show", "--json", "metrics/curves/reliability.json").stdout)
    spec = next(entry[0]["content"] for key, entry in vega["data"].items() if key.endswith("metrics/curves/reliability.json")
                and entry and "facet" in entry[0]["content"])
    assert spec["facet"]["row"]["field"] == "task" and spec["facet"]["column"]["field"] == "iteration"
    assert spec["spec"]["layer"][0]["encoding"]["x2"] == {"datum": 1}  # the perfect-calibration diagonal
    rows = spec["data"]["values"]
    assert {(r["task"], r["iteration"]) for r in rows} == {(t, i) for t in ("math", "commonsense") for i in (0, 1, 2)}
    curves = json.loads((study / "metrics/curves/train_loss.json").read_text())
    assert {(r["task"], r["iteration"]) for r in curves} == {(t, i) for t in ("math", "commonsense") for i in (0, 1, 2)}
    synthetic = json.loads((study / "metrics/curves/synthetic_accuracy.json").read_text())
    assert [r["iteration"] for r in synthetic] == [1, 2] and all(0 <= r["math"] <= 1 for r in synthetic)
    assert "gitignore" not in page
    assert "cdn.jsdelivr" not in page and "vegaEmbed" in page  # Vega inlined: renders offline


def test_nothing_changed_runs_no_stage(study):
    out = sh(study, "dvc", "repro")
    assert ran_stages(out.stdout) == set(), out.stdout


def test_a_new_ratio_reruns_only_what_depends_on_it(study):
    out = sh(study, "dvc", "exp", "run", "-S", "ratio=0.3")
    ran = ran_stages(out.stdout)
    assert "mix@iter1" in ran and "train@iter2" in ran
    # external data, tokenizer, the baseline and iteration 1's synthetic data come from the cache
    assert not ran & {"pretrain", "prepare", "tokenizer", "baseline_mix", "baseline_train", "baseline_evaluate", "generate@iter1",
                      "validate@iter1"}, ran
    mix = json.loads((study / "metrics/mix/iter1.json").read_text())
    assert mix["math"]["synthetic"] == round(0.3 * 48)
    diff = sh(study, "dvc", "metrics", "diff", "--json").stdout
    assert "metrics/iterations/iter1.json" in diff


def test_invalid_params_stop_before_anything_is_written(tmp_path):
    repo = make_repo(tmp_path, {**TINY, "ratio": 1.5, "tasks": ["math"]})
    out = sh(repo, "dvc", "repro", check=False)
    assert out.returncode != 0
    assert "ratio: Input should be less than or equal to 1 (got 1.5)" in out.stdout + out.stderr
    assert not (repo / "data/external").exists()


def copy_of(study: Path, tmp_path: Path) -> Path:
    """The study repository copied whole (git, DVC cache, lock): its finished stages stay finished."""
    return Path(shutil.copytree(study, tmp_path / "study", symlinks=True))


def test_halt_gate_stops_the_next_iteration_and_keeps_what_ran(study, tmp_path):
    # The premise: a task's ECE rose at iteration 1. On 12 test questions the direction of
    # ECE's change is noise (seed 0 at ratio 0.2 falls by 1.8%, at 0.3 it rises), so the premise is
    # found, not assumed: only the mix and iteration 1 rerun per ratio (~11 s each); the baseline is
    # the study's, already run. What is under test is what a halt does once the gate trips.
    repo = copy_of(study, tmp_path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    tried = {}
    for ratio in (0.2, 0.3, 0.5, 0.1, 0.4):
        params["ratio"] = ratio
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        sh(repo, "dvc", "repro", "gate@iter1")
        gate = json.loads((repo / "metrics/gate/iter1.json").read_text())
        rises = [gate[t]["ece_relative_change"] for t in ("commonsense", "math") if gate[t]["ece_relative_change"] is not None]
        rise = max(rises, default=None)
        tried[ratio] = rise
        if rise is not None and rise > 0:
            break
    else:
        pytest.fail(f"ECE fell at iteration 1 for every ratio tried: {tried}")
    # a halt threshold below the observed rise: the gate must trip and stop iteration 2
    params["gate"] = {"mode": "halt", "ece_relative_rise": rise / 2, "ece_absolute_rise": 1.0, "score_flat": 0.0}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(repo, "dvc", "repro", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "generate@iter2" in text and f"lower `ratio` (now {ratio})" in text and "gate.mode=warn" in text
    assert json.loads((repo / "metrics/gate/iter1.json").read_text())["flagged"] is True
    assert (repo / "models/iter1/commonsense/model.safetensors").exists()
    assert not (repo / "data/synthetic/raw/iter2").exists()
    status = sh(repo, "dvc", "status", "train@iter1").stdout
    assert "changed" not in status  # iteration 1 is committed, not lost


def test_validation_fail_policy_fails_the_stage(study, tmp_path):
    repo = copy_of(study, tmp_path)  # generate@iter1 has run there
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["validate"] = {"on_invalid": "fail", "max_duplicate_rate": 0.5}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "generate@iter1" not in ran_stages(sh(repo, "dvc", "repro", "generate@iter1").stdout)
    # a generated set with answers that cannot be parsed (as an undertrained model writes them)
    raw = repo / "data/synthetic/raw/iter1/math.jsonl"
    rows = [json.loads(line) for line in raw.read_text().splitlines()]
    for row in rows[:5]:
        row["completion"] = " I do not know"
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = sh(repo, "dvc", "repro", "--single-item", "validate@iter1", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "malformed" in text and rows[0]["id"] in text
    assert raw.exists()  # the raw set is always kept
    assert not (repo / "data/synthetic/validated/iter1/math.jsonl").exists()


def test_a_new_seed_or_ratio_never_retrains_the_base(study, tmp_path):
    """The base is pretrained once per size: dvc skips the stage whatever the experiment's seed,
    ratio or tasks (it reads model, tokenizer and pretrain only), and reruns it for its own seed."""
    repo = copy_of(study, tmp_path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(seed=1, ratio=0.5, tasks=["math"])
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(repo, "dvc", "repro", "pretrain")
    assert "pretrain" not in ran_stages(out.stdout), out.stdout
    params["pretrain"] = {**params["pretrain"], "seed": 1}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(sh(repo, "dvc", "repro", "--dry", "pretrain").stdout) == {"pretrain"}
