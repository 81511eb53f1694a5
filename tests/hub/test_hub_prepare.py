"""The prepare stage with `prepare.source: hub`: caps, provenance, errors, and the `synthmix prepare` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import yaml
from datasets import Features, Value

from hub_copies import NQ, write_repo
from synthmix import prepare
from synthmix.params import ParamsError, parse_params
from synthmix.records import read_jsonl
from synthmix.tasks import get_task
from synthmix.tasks.hub import HubError

TASKS = ["commonsense", "math", "factual", "reading", "code"]


# ----- caps -----------------------------------------------------------------------------------------

def test_sizes_are_caps_a_seeded_sample_in_the_dataset_order(load):
    everything = load("math")["train"].examples
    two = load("math", train=2)["train"].examples
    assert len(two) == 2 and two == load("math", train=2)["train"].examples  # deterministic
    ids = [ex["id"] for ex in everything]
    assert [ids.index(ex["id"]) for ex in two] == sorted(ids.index(ex["id"]) for ex in two)  # dataset order
    assert load("math", train=100)["train"].examples == everything  # a cap above the size keeps every row
    samples = {tuple(ex["id"] for ex in load("math", train=1, seed=s)["train"].examples) for s in range(12)}
    assert len(samples) > 1  # the sample depends on the seed
    # train drops every test question, sampled or not: the train split does not depend on test_size
    assert load("factual", test=1, seed=3)["train"].examples == load("factual")["train"].examples


def test_null_sizes_need_the_hub_source():
    with pytest.raises(ParamsError, match="train_size: null .* needs source: hub"):
        parse_params({"prepare": {"train_size": None}})
    params = parse_params({"prepare": {"source": "hub", "test_size": None, "sizes": {"code": {"train_size": None}}}})
    assert params.size("math", "test") is None and params.size("code", "train") is None
    assert params.size("math", "train") == 2000


def test_hub_params_merge_over_the_defaults_and_name_bad_keys():
    params = parse_params({"prepare": {"source": "hub", "hub": {"math": {"train": {"revision": "abc123"}}}}})
    math = params.prepare.hub["math"]
    assert (math.train.path, math.train.name, math.train.revision) == ("openai/gsm8k", "main", "abc123")
    assert math.test.revision is None and params.prepare.hub["code"].test.path == "openai/openai_humaneval"
    assert params.prepare.hub["commonsense"].test.split == "validation"
    for raw, expected in [
        ({"hub": {"math": {"train": {"format": "squad_v2"}}}}, "math.train.format: 'squad_v2' is not a math adapter"),
        ({"hub": {"chess": {}}}, "unknown task(s) ['chess']"),
        ({"hub": {"math": {"train": {"paht": "x"}}}}, "prepare.hub.math.train.paht: Extra inputs are not permitted"),
        ({"source": "web"}, "prepare.source: Input should be 'builtin' or 'hub'"),
    ]:
        with pytest.raises(ParamsError) as err:
            parse_params({"prepare": raw})
        assert expected in str(err.value)


def test_the_paper_profile_reads_the_five_benchmarks():
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    raw["profile"] = "paper"
    prep = parse_params(raw).prepare
    assert prep.source == "hub"
    assert {task: (spec.train.path, spec.test.path, spec.test.split) for task, spec in prep.hub.items()} == {
        "commonsense": ("tau/commonsense_qa", "tau/commonsense_qa", "validation"),
        "math": ("openai/gsm8k", "openai/gsm8k", "test"),
        "factual": ("google-research-datasets/nq_open", "google-research-datasets/nq_open", "validation"),
        "reading": ("rajpurkar/squad_v2", "rajpurkar/squad_v2", "validation"),
        "code": ("google-research-datasets/mbpp", "openai/openai_humaneval", "test"),
    }


# ----- errors ---------------------------------------------------------------------------------------

def test_a_row_missing_a_column_names_the_dataset_row_and_column(load, tmp_path):
    rows = {"main": {split: [{"question": "Q?", "solution": "#### 1"}] for split in ("train", "test")}}
    broken = write_repo(tmp_path / "gsm8k", rows, {"main": Features({"question": Value("string"),
                                                                     "solution": Value("string")})})
    with pytest.raises(HubError) as err:
        load("math", hub={"train": {"path": str(broken)}})
    message = str(err.value)
    assert str(broken) in message and "split='train'" in message and "row 0" in message
    assert "missing column(s) ['answer'] of the gsm8k schema" in message


def test_a_row_of_the_wrong_type_names_the_column(load, tmp_path):
    rows = {"nq_open": {"train": [{"question": "who?", "answer": "me"}], "validation": [{"question": "q", "answer": "a"}]}}
    broken = write_repo(tmp_path / "nq", rows, {"nq_open": Features({"question": Value("string"),
                                                                    "answer": Value("string")})})
    with pytest.raises(HubError, match=r"row 0: answer must be a list of strings, got str 'a'"):
        load("factual", hub={"test": {"path": str(broken)}})
    assert NQ  # the well-formed copy has lists


def test_a_missing_config_split_or_directory_is_a_clear_error(load, tmp_path):
    with pytest.raises(HubError, match=r"BuilderConfig 'sanitised' not found. Available: \['main', 'socratic'\]"):
        load("math", hub={"train": {"name": "sanitised"}})
    with pytest.raises(HubError, match=r"Unknown split \"dev\""):
        load("math", hub={"test": {"split": "dev"}})
    with pytest.raises(HubError, match="local directory .*/nowhere does not exist"):
        load("math", hub={"test": {"path": str(tmp_path / "nowhere")}})


def test_a_dataset_not_in_the_cache_says_how_to_fetch_it(load, hub_cache):
    with pytest.raises(HubError) as err:
        load("math", hub={"test": {"path": "openai/gsm8k"}})
    message = str(err.value)
    assert "'openai/gsm8k', name='main', split='test'" in message
    assert f"not in the local datasets cache ({hub_cache})" in message
    assert "HF_DATASETS_OFFLINE=0" in message and "HF_HUB_OFFLINE=0" in message
    assert "dvc exp run -S profile=paper" in message


def test_hf_datasets_offline_0_alone_is_not_enough_and_the_error_says_so(load, monkeypatch):
    import datasets.config

    # HF_DATASETS_OFFLINE=0 turns datasets online, but it downloads through huggingface_hub, which
    # synthmix's HF_HUB_OFFLINE=1 keeps offline (hub_cache sets it): it fails at once, no network used
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    assert huggingface_hub.constants.is_offline_mode()
    with pytest.raises(HubError, match="HF_DATASETS_OFFLINE is 0 but HF_HUB_OFFLINE is still on"):
        load("math", hub={"test": {"path": "openai/gsm8k"}})


# ----- the stage --------------------------------------------------------------------------------------

def test_prepare_writes_every_task_with_its_provenance(copies, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = parse_params({"prepare": {"source": "hub", "train_size": 3, "test_size": None, "hub": copies}})
    assert prepare.run(params) == 0
    metrics = json.loads(Path("metrics/external.json").read_text())
    assert {t: (m["train"], m["test"]) for t, m in metrics.items()} == {
        "commonsense": (3, 2), "math": (3, 2), "factual": (2, 2), "reading": (3, 2), "code": (3, 2)}
    assert metrics["code"]["skipped_rows"] == 2 and metrics["code"]["train_available"] == 4
    assert metrics["reading"]["trivial_baseline"] == 0.5
    for name in TASKS:
        task = get_task(name)
        train, test = (read_jsonl(Path(f"data/external/{name}/{s}.jsonl")) for s in ("train", "test"))
        assert not {ex["id"] for ex in train} & {ex["id"] for ex in test}
        assert not {ex["prompt"] for ex in train} & {ex["prompt"] for ex in test}
        if name != "code":  # code runs in the sandbox: test_hub_code.py
            assert all(s.correct == 1.0 for s in task.score(test, [ex["completion"] for ex in test]))
        source = json.loads(Path(f"data/external/{name}/source.json").read_text())
        assert source["train"]["path"] == copies[name]["train"]["path"] and source["train"]["fingerprint"]
        # validate's rules for hub data accept every gold example (test_hub_checks.py)
        gold = source["gold_checks"]
        assert set(gold["failed_share"]) == set(task.checks(train[0])) and not any(gold["failed_share"].values())
        assert gold["completion_chars"]["outside_share"] == gold["prompt_chars"]["outside_share"] == 0
        assert gold["completion_chars"]["bounds"] == list(get_task(name, "hub").length_bounds(train)["completion"])
    math = json.loads(Path("data/external/math/source.json").read_text())["gold_checks"]["completion_chars"]
    assert math["family_bounds"] == [8, 200] and math["bounds"][1] >= 1.25 * math["gold_max"] > 1.25 * 200
    assert "validate will flag that share" not in capsys.readouterr().out


def test_the_builtin_source_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert prepare.run(parse_params({"tasks": ["math"], "prepare": {"train_size": 5, "test_size": 2}})) == 0
    assert sorted(p.name for p in Path("data/external/math").iterdir()) == ["test.jsonl", "train.jsonl"]
    assert set(json.loads(Path("metrics/external.json").read_text())["math"]) == {"train", "test", "trivial_baseline"}


def _cli(cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        env.pop(var, None)  # synthmix's own default: offline
    return subprocess.run([sys.executable, "-m", "synthmix.cli", "prepare"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_synthmix_prepare_cli_with_source_hub(copies, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"threads": 1, "prepare": {"source": "hub", "train_size": None, "test_size": None, "hub": copies}}))
    proc = _cli(tmp_path, tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "code: 4 train / 2 test" in proc.stdout and "1 dropped (prompt also in test)" in proc.stdout
    for name in TASKS:
        assert (tmp_path / "data" / "external" / name / "source.json").exists()
    assert json.loads((tmp_path / "metrics" / "external.json").read_text())["factual"]["train"] == 2


def test_synthmix_prepare_cli_exits_1_and_writes_nothing_when_a_dataset_is_not_cached(copies, tmp_path):
    hub = {**copies, "math": {"train": {"path": "openai/gsm8k"}, "test": {"path": "openai/gsm8k"}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"threads": 1, "prepare": {"source": "hub", "hub": hub}}))
    proc = _cli(tmp_path, tmp_path / "cache")
    assert proc.returncode == 1
    assert "synthmix prepare: math: dataset 'openai/gsm8k'" in proc.stderr
    assert "HF_DATASETS_OFFLINE=0" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()
