"""The factual family: a generated world of facts, held-out phrasings, exact-match scoring."""

from __future__ import annotations

import random

import pytest

from synthmix.tasks import get_task
from synthmix.tasks.factual import world

TASK = get_task("factual")


@pytest.fixture(scope="module")
def splits():
    return TASK.build("train", 2000, 0), TASK.build("test", 200, 0)


# Determinism, train/test disjointness, gold answers scoring right: tests/test_task_contract.py


def test_the_world_is_drawn_from_the_seed():
    assert world(0) == world(0) != world(1)


def test_world_size_and_unique_subjects():
    facts = world(0)
    assert 150 <= len(facts) <= 300
    assert len({(relation, subject) for relation, subject, _ in facts}) == len(facts)


def test_test_asks_train_facts_in_new_words(splits):
    train, test = splits
    assert not {ex["prompt"] for ex in train} & {ex["prompt"] for ex in test}
    taught = {(ex["relation"], ex["subject"]): ex["answers"] for ex in train}
    for ex in test:
        assert taught[(ex["relation"], ex["subject"])] == ex["answers"]
    # 200 test questions, all different (one held-out phrasing per fact, >= 200 facts)
    assert len({ex["prompt"] for ex in test}) == 200


def test_each_fact_appears_several_times_in_train(splits):
    counts: dict[tuple[str, str], int] = {}
    for ex in splits[0]:
        counts[(ex["relation"], ex["subject"])] = counts.get((ex["relation"], ex["subject"]), 0) + 1
    assert len(counts) == len(world(0)) and min(counts.values()) >= 5


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
