"""The pretrain stage: a corpus of the task worlds in prose, disjoint from every item, and the base it trains."""

from __future__ import annotations

import json

import pytest

from synthmix import pretrain
from synthmix.params import parse_params
from synthmix.tasks import get_task, task_names


def _params(**overrides):
    return parse_params({"pretrain": {"passes": 1}, **overrides})


@pytest.fixture(scope="module")
def one_pass():
    return pretrain.corpus(_params())


def test_the_corpus_depends_on_neither_the_experiment_seed_nor_ratio_nor_tasks(one_pass):
    assert pretrain.corpus(_params(seed=7, ratio=0.5, tasks=["math"])) == one_pass
    assert pretrain.corpus(parse_params({"pretrain": {"passes": 1, "seed": 1}})) != one_pass


def test_every_built_in_family_writes_and_passes_reword(one_pass):
    assert {name for name, _ in one_pass} == set(task_names())
    two = pretrain.corpus(_params(pretrain={"passes": 2}))
    assert len(two) == 2 * len(one_pass)
    assert len({doc for _, doc in two}) > 1.8 * len(one_pass)  # a second pass is new wording, not copies
    half = pretrain.corpus(_params(pretrain={"passes": 0.5}))
    assert len(half) == round(len(one_pass) / 2)


def test_repeats_word_a_familys_world_more_often_in_each_pass(one_pass):
    from collections import Counter

    from synthmix.params import ParamsError

    base = Counter(name for name, _ in one_pass)
    three = pretrain.corpus(_params(pretrain={"passes": 1, "repeats": {"factual": 3}}))
    counts = Counter(name for name, _ in three)
    assert counts == {**base, "factual": 3 * base["factual"]}
    factual = [doc for name, doc in three if name == "factual"]
    assert len(set(factual)) > 2.5 * base["factual"]  # new wording each time, not copies
    assert pretrain.corpus(_params(pretrain={"passes": 1, "repeats": {}})) == one_pass  # the default changes nothing
    with pytest.raises(ParamsError, match=r"pretrain\.repeats.*unknown family \['facts'\]"):
        _params(pretrain={"repeats": {"facts": 3}})
    with pytest.raises(ParamsError, match=r"pretrain\.repeats"):
        _params(pretrain={"repeats": {"factual": 0}})


def test_no_fine_tuning_or_test_item_is_in_the_corpus(one_pass):
    docs = [doc for _, doc in one_pass]
    text = "\n".join(docs)
    assert "Question:" not in text and "Passage:" not in text and "Answer:" not in text
    code = get_task("code")
    for split in ("train", "test"):
        for ex in code.build(split, 1000, 0):
            assert ex["prompt"] not in text, ex["prompt"]


def test_closed_book_test_facts_are_taught_only_by_the_corpus(one_pass):
    docs = [doc for name, doc in one_pass if name == "factual"]
    test = get_task("factual").build("test", 300, 0)
    train_subjects = {(ex["relation"], ex["subject"]) for ex in get_task("factual").build("train", 2000, 0)}
    for ex in test:
        assert (ex["relation"], ex["subject"]) not in train_subjects
        assert any(ex["subject"] in d and ex["answers"][0] in d for d in docs)


def test_sequences_pack_documents_with_eos():
    rows = pretrain.sequences(["a b", "c", "d e f", "g", "h"], pack=2)
    assert [r["completion"] for r in rows] == ["a b<|endoftext|>c", "d e f<|endoftext|>g", "h"]
    assert all(r["prompt"] == "" for r in rows)


@pytest.mark.slow
def test_the_stage_writes_a_loadable_base_and_leaves_no_scratch(tmp_path):
    """`synthmix pretrain` as dvc.yaml runs it (its own process: accelerate's state is per process)."""
    import subprocess
    import sys

    import yaml
    from transformers import AutoModelForCausalLM, AutoTokenizer

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "threads": 1, "tokenizer": {"vocab_size": 400},
        "pretrain": {"passes": 0.03, "batch_size": 16, "max_length": 128}}))
    run = lambda *args: subprocess.run([sys.executable, "-m", "synthmix.cli", "pretrain", *args],  # noqa: E731
                                       cwd=tmp_path, capture_output=True, text=True)
    done = run("--size", "tiny")
    assert done.returncode == 0, done.stderr[-3000:]
    base = tmp_path / "models/base/tiny"
    model = AutoModelForCausalLM.from_pretrained(base)
    tok = AutoTokenizer.from_pretrained(base)
    assert model.get_input_embeddings().num_embeddings == len(tok) <= 400
    summary = json.loads((tmp_path / "metrics/pretrain/tiny.json").read_text())
    assert summary["steps"] >= 1 and summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert (tmp_path / "metrics/pretrain/tiny/plots/metrics/loss.tsv").exists()
    assert not (tmp_path / ".synthmix").exists()
    # a hub model comes pretrained: the stage only says so
    assert run("--size", "EleutherAI/pythia-70m").returncode == 0
    note = json.loads((tmp_path / "models/base/EleutherAI/pythia-70m/source.json").read_text())
    assert note["model"] == "EleutherAI/pythia-70m"
