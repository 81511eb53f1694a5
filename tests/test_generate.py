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
    model = modeling.ladder_model(params.model, tok)
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


def test_max_new_tokens_overrides_the_family_budget_in_generate_and_evaluate(project, capsys, monkeypatch):
    """params `max_new_tokens.<task>` caps the synthetic samples (generate) and the greedy answers and
    diversity samples (evaluate); a budget under the gold lengths is reported."""
    from synthmix import evaluation, inference

    params, _ = project
    task = get_task("math")
    assert params.generation_budget(task) == task.max_new_tokens == 48  # no override: the family's
    params = params.model_copy(update={"max_new_tokens": {"math": 3}})
    assert params.generation_budget(task) == 3
    budgets, real_generate = [], inference.generate

    def recording(*args, **kwargs):
        out = real_generate(*args, **kwargs)
        budgets.append((kwargs["max_new_tokens"], kwargs.get("sample", False), max(len(g.token_ids) for g in out)))
        return out

    monkeypatch.setattr(inference, "generate", recording)
    assert generate.run(params, 1) == 0
    assert budgets == [(3, True, 3)]  # an untrained model does not stop early
    rows = read_jsonl(paths.synthetic_raw(1, "math"))
    assert all(row["origin"]["max_new_tokens"] == 3 for row in rows)
    assert json.loads(paths.synthetic_meta(1).read_text())["max_new_tokens"] == {"math": 3}
    note = "of math's gold train completions are longer than its generation budget of 3 tokens"
    assert note in capsys.readouterr().out

    budgets.clear()
    evaluation.evaluate_task(params, 0, task)
    assert budgets == [(3, False, 3), (3, True, 3)]  # greedy answers, then the diversity samples
    assert "100.0% of math's gold test completions are longer" in capsys.readouterr().out
    # the family's budget again: gold answers fit, nothing to report
    budgets.clear()
    evaluation.evaluate_task(params.model_copy(update={"max_new_tokens": {}}), 0, task)
    assert [b[:2] for b in budgets] == [(48, False), (48, True)]
    assert "generation budget" not in capsys.readouterr().out


def test_tasks_side_by_side_sample_and_score_what_one_after_another_do(tmp_path, monkeypatch):
    """generate and evaluate run their tasks in forked workers on a CPU (workers: 0 -> one per core):
    the synthetic sets are the same bytes as with `workers: 1`, the scores the same numbers."""
    from synthmix import evaluation

    monkeypatch.chdir(tmp_path)
    names = ["math", "reading", "code"]
    texts = []
    for name in names:
        task = get_task(name)
        write_jsonl(paths.external(name, "train"), task.build("train", 16, 0))
        write_jsonl(paths.external(name, "test"), task.build("test", 6, 0))
        texts += [e["prompt"] + e["completion"] for e in task.build("train", 16, 0)]
    tok = train_tokenizer(iter(texts), 300)
    for name in names:
        params = parse_params({"tasks": names})
        model = modeling.ladder_model(params.model, tok)
        model.save_pretrained(paths.model(0, name))
        tok.save_pretrained(paths.model(0, name))
    paths.ensure_parent(paths.scores(0)).write_text(json.dumps({n: {"score": 0.5, "ece": 0.1} for n in names}))
    outputs = {}
    for n_workers in (1, 2):
        params = parse_params({"tasks": names, "workers": n_workers, "prepare": {"train_size": 16},
                               "generate": {"size_factor": 0.5}, "evaluate": {"diversity_samples": 4}})
        gate.run(params, 0)
        assert generate.run(params, 1) == 0
        evaluation.run(params, 0)
        outputs[n_workers] = (
            {n: paths.synthetic_raw(1, n).read_bytes() for n in names},
            json.loads(paths.scores(0).read_text()),
        )
    (raw_1, scores_1), (raw_2, scores_2) = outputs[1], outputs[2]
    assert raw_2 == raw_1
    assert sorted(scores_2) == sorted(names)
    for name in names:
        assert scores_2[name] == pytest.approx(scores_1[name], rel=1e-5, abs=1e-7)
