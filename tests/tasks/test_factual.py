"""The factual family: a fixed world of facts, test facts taught only by the pretraining corpus, exact match."""

from __future__ import annotations

import random

import pytest

from synthmix.tasks import get_task
from synthmix.tasks.factual import split_facts, world

TASK = get_task("factual")


@pytest.fixture(scope="module")
def splits():
    return TASK.build("train", 2000, 0), TASK.build("test", 1000, 0)


# Determinism, train/test disjointness, gold answers scoring right: tests/test_task_contract.py


def test_the_world_is_fixed_and_the_seed_splits_it():
    assert world() == world()
    train0, test0 = split_facts(0)
    train1, test1 = split_facts(1)
    assert {f[:2] for f in test0} != {f[:2] for f in test1}
    assert len(test0) == 1000 and not {f[:2] for f in train0} & {f[:2] for f in test0}


def test_world_size_and_unique_subjects():
    facts = world()
    assert len(facts) >= 1400  # 1,000 distinct test facts, the rest for fine-tuning
    assert len({(relation, subject) for relation, subject, _ in facts}) == len(facts)


def test_test_asks_facts_fine_tuning_never_shows(splits):
    train, test = splits
    assert not {(ex["relation"], ex["subject"]) for ex in train} & {(ex["relation"], ex["subject"]) for ex in test}
    facts = {(rel, subj): answers for rel, subj, answers in world()}
    assert all(facts[(ex["relation"], ex["subject"])] == ex["answers"] for ex in test)
    assert len({(ex["relation"], ex["subject"]) for ex in test}) == len(test) == 1000  # 1,000 distinct facts


def test_the_corpus_states_every_fact_and_asks_nothing():
    docs = TASK.corpus(random.Random(0))
    text = " ".join(docs)
    assert "?" not in text and "Question:" not in text
    for relation, subject, answers in world()[::37]:
        doc = next(d for d in docs if d.startswith(subject) or subject in d.split(".")[0])
        assert answers[0] in doc
    # a new pass words the facts afresh
    assert docs != TASK.corpus(random.Random(1)) and len(TASK.corpus(random.Random(1))) == len(docs)


def test_each_train_fact_is_asked_in_several_phrasings():
    train = TASK.build("train", 6000, 0)
    prompts: dict[tuple[str, str], set[str]] = {}
    for ex in train:
        prompts.setdefault((ex["relation"], ex["subject"]), set()).add(ex["prompt"])
    assert len(prompts) == len(split_facts(0)[0]) and min(len(v) for v in prompts.values()) >= 3


def test_schema_and_gold_scores_right(splits):
    test = splits[1]
    for ex in test:
        assert ex["completion"] == f" {ex['answers'][0]}"
        assert ex["prompt"].startswith("Question: ") and ex["prompt"].endswith("?\nAnswer:")
    assert TASK.summarize(test, TASK.score(test, [ex["completion"] for ex in test])) == {"exact_match": 1.0}


def test_exact_match_normalises_and_takes_the_best_alias():
    ex = {"answers": ["Mara Velin", "Velin"]}
    completions = [" mara velin.", " The Velin", " Velin\nsomething else", " Mara", " ", " Dorvik"]
    assert [s.correct for s in TASK.score([ex] * 6, completions)] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert TASK.extract("  ") is None and TASK.extract(" Lisbon \n") == "Lisbon"


def test_trivial_baseline_is_the_most_frequent_train_answer():
    train = [{"answers": [a]} for a in ("Lisbon", "Lisbon", "Oslo")]
    test = [{"answers": ["lisbon"]}, {"answers": ["Oslo"]}]
    assert TASK.trivial_baseline(train, test) == {"name": "most frequent train answer (Lisbon)", "score": 0.5}


def test_parse_instance_round_trips(splits):
    for ex in splits[1][:20]:
        parsed = TASK.parse_instance(TASK.render_instance(ex))
        assert parsed == {"prompt": ex["prompt"], "completion": ex["completion"], "answers": ex["answers"][:1]}
    assert TASK.parse_instance("Question: Who?\nAnswer: ")["answers"] is None
    assert TASK.parse_instance("Who founded it? Velin") is None


def test_checks_flag_malformed_samples(splits):
    ex = splits[1][0]
    assert all(TASK.checks(ex).values())
    assert TASK.checks({**ex, "completion": " "})["non_empty_answer"] is False
    assert TASK.checks({**ex, "completion": " Oslo\nQuestion: more"})["single_line"] is False
    assert TASK.checks({**ex, "prompt": "Who?"})["prompt_format"] is False


def test_instance_prompt_and_lengths(splits):
    lo, hi = TASK.completion_chars
    assert all(lo <= len(ex["completion"]) <= hi for ex in splits[0])
    assert TASK.instance_prompt(random.Random(0)) == "Question:"
