"""The generate stage: provenance, both synthetic modes, and the gate it enforces."""

import json

import pytest

from synthmix import gate, generate, modeling, paths
from synthmix.params import parse_params
from synthmix.records import read_jsonl, write_jsonl
from synthmix.tasks import get_task
from synthmix.tokenizer import train_tokenizer


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project dir with math's external data and an (untrained) iteration-0 model."""
    monkeypatch.chdir(tmp_path)
    task = get_task("math")
    train = task.build("train", 24, 0)
    write_jsonl(paths.external("math", "train"), train)
    write_jsonl(paths.external("math", "test"), task.build("test", 6, 0))
    tok = train_tokenizer((e["prompt"] + e["completion"] for e in train), 300)
    params = parse_params({"tasks": ["math"], "prepare": {"train_size": 24}, "generate": {"size_factor": 0.5}})
    model = modeling.base_model(params, tok)
    model.save_pretrained(paths.model(0, "math"))
    tok.save_pretrained(paths.model(0, "math"))
    paths.ensure_parent(paths.scores(0)).write_text(json.dumps({"math": {"score": 0.5, "ece": 0.1}}))
    gate.run(params, 0)  # the verdict on iteration 0 that generate of iteration 1 checks
    return params, train


def test_answers_mode_keeps_prompts_and_records_provenance(project):
    params, train = project
    assert generate.run(params, 1) == 0
    rows = read_jsonl(paths.synthetic_raw(1, "math"))
    assert len(rows) == 12
    by_id = {e["id"]: e for e in train}
    digest = generate.checkpoint_digest(paths.model(0, "math"))
    for row in rows:
        source = by_id[row["origin"]["source_id"]]
        assert row["prompt"] == source["prompt"] and row["answer"] == source["answer"]
        assert row["origin"]["model_sha256"] == digest
        assert (row["origin"]["temperature"], row["origin"]["top_p"]) == (0.8, 0.9)
    meta = json.loads((paths.synthetic_raw(1, "math").parent / "meta.json").read_text())
    assert meta["tasks"]["math"] == {"samples": 12, "model": "models/iter0/math", "model_sha256": digest}


def test_instances_mode_keeps_unparseable_samples_flagged(project):
    params, _ = project
    params = params.model_copy(update={
        "generate": params.generate.model_copy(update={"mode": "instances"}),
    })
    assert generate.run(params, 1) == 0
    rows = read_jsonl(paths.synthetic_raw(1, "math"))
    assert len(rows) == 12
    # an untrained model writes noise: it is kept in the raw set, flagged, for validation to judge
    assert all("parsed" in r["origin"] for r in rows)
    assert all(isinstance(r["prompt"], str) and isinstance(r["completion"], str) for r in rows)


def test_digest_tells_checkpoints_apart(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model.safetensors").write_bytes(b"one")
    first = generate.checkpoint_digest(tmp_path / "a")
    (tmp_path / "a" / "model.safetensors").write_bytes(b"two")
    assert generate.checkpoint_digest(tmp_path / "a") != first


def test_halt_gate_stops_generation_before_it_writes(project, capsys):
    params, _ = project
    params = params.model_copy(update={"gate": params.gate.model_copy(update={"mode": "halt"})})
    paths.scores(1).write_text(json.dumps({"math": {"score": 0.5, "ece": 0.3}}))
    gate.run(params, 1)
    assert generate.run(params, 2) == 3
    assert "ece_relative_rise" in capsys.readouterr().err
    assert not paths.synthetic_raw(2, "math").exists()
