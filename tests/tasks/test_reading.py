"""The reading family: passages, spans and unanswerable questions, official SQuAD 2.0 scoring."""

from __future__ import annotations

import random

import pytest

from synthmix.tasks import get_task
from synthmix.tasks.reading import parse_prompt
from synthmix.tasks.text import best_over_golds, normalize_answer, token_f1

TASK = get_task("reading")


@pytest.fixture(scope="module")
def splits():
    return TASK.build("train", 2000, 0), TASK.build("test", 200, 0)


# Determinism, train/test disjointness, gold answers scoring right: tests/test_task_contract.py


def test_the_split_is_a_fixed_partition_of_the_passages(splits):
    # no test prompt is a train prompt of another seed either
    assert not {ex["prompt"] for ex in TASK.build("train", 2000, 5)} & {ex["prompt"] for ex in splits[1]}


def test_answers_are_spans_and_a_third_is_unanswerable(splits):
    train, test = splits
    for ex in train + test:
        passage, question = parse_prompt(ex["prompt"])
        if ex["answers"]:
            assert ex["completion"] == f" {ex['answers'][0]}" and ex["answers"][0] in passage
        else:
            assert ex["completion"] == " unanswerable"
    share = sum(not ex["answers"] for ex in train) / len(train)
    assert 0.28 < share < 0.39


def test_extract_maps_unanswerable_to_the_empty_prediction():
    assert TASK.extract(" unanswerable") == ""
    assert TASK.extract(" Unanswerable \n") == ""
    assert TASK.extract("") == ""
    assert TASK.extract(" three cats\nPassage: more") == "three cats"


def test_squad_normalisation_and_f1_by_hand():
    assert normalize_answer("The  Cat's, hat!") == "cats hat"
    assert normalize_answer("an apple a day") == "apple day"
    # pred tokens [three, black, cats], gold [three, cats]: P = 2/3, R = 1, F1 = 0.8
    assert token_f1("the three black cats", "three cats") == pytest.approx(0.8)
    assert token_f1("cats cats", "cats") == pytest.approx(2 * 0.5 * 1 / 1.5)  # bag, not set
    assert best_over_golds("Three cats.", ["two dogs", "three cats"]) == (1.0, 1.0)


def test_no_answer_rules():
    assert best_over_golds("", []) == (1.0, 1.0)
    assert best_over_golds("three cats", []) == (0.0, 0.0)
    assert best_over_golds("", ["three cats"]) == (0.0, 0.0)
    assert best_over_golds("", ["the"]) == (1.0, 1.0)  # a gold that normalises away means no answer


def test_score_and_summarize_by_hand():
    examples = [{"answers": ["three cats"]}, {"answers": ["spicy soup"]}, {"answers": []}, {"answers": []}]
    scored = TASK.score(examples, [" three cats", " spicy rice", " unanswerable", " west Fapo"])
    assert [s.correct for s in scored] == [1.0, 0.0, 1.0, 0.0]
    assert [s.extra["f1"] for s in scored] == [1.0, 0.5, 1.0, 0.0]
    summary = TASK.summarize(examples, scored)
    assert summary == {
        "exact_match": 0.5, "f1": 0.625, "total": 4.0,
        "HasAns_exact": 0.5, "HasAns_f1": 0.75, "HasAns_total": 2.0,
        "NoAns_exact": 0.5, "NoAns_f1": 0.5, "NoAns_total": 2.0,
    }


def test_gold_scores_perfectly(splits):
    test = splits[1]
    summary = TASK.summarize(test, TASK.score(test, [ex["completion"] for ex in test]))
    assert summary["f1"] == summary["exact_match"] == 1.0
    assert summary["HasAns_total"] + summary["NoAns_total"] == 200


def test_trivial_baseline_is_always_unanswerable(splits):
    train, test = splits
    share = sum(not ex["answers"] for ex in test) / len(test)
    assert TASK.trivial_baseline(train, test) == {"name": "always unanswerable", "score": pytest.approx(share)}


def test_parse_instance_round_trips(splits):
    for ex in splits[1][:30]:
        parsed = TASK.parse_instance(TASK.render_instance(ex))
        assert parsed == {"prompt": ex["prompt"], "completion": ex["completion"], "answers": ex["answers"]}
    assert TASK.parse_instance("Passage: x\nAnswer: y") is None


def test_checks_flag_answers_not_in_the_passage(splits):
    answerable = next(ex for ex in splits[1] if ex["answers"])
    assert TASK.checks(answerable) == {"prompt_format": True, "span_or_unanswerable": True}
    assert TASK.checks({**answerable, "completion": " unanswerable"})["span_or_unanswerable"] is True
    assert TASK.checks({**answerable, "completion": " purple elephants"})["span_or_unanswerable"] is False
    assert TASK.checks({**answerable, "prompt": "Question: x\nAnswer:"})["prompt_format"] is False


def test_instance_prompt_and_lengths(splits):
    lo, hi = TASK.completion_chars
    assert all(lo <= len(ex["completion"]) <= hi for ex in splits[0])
    assert max(len(ex["prompt"]) for ex in splits[0]) < 250
    assert TASK.instance_prompt(random.Random(0)) == "Passage:"
