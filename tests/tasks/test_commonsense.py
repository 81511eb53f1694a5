"""The commonsense family: generated world, multiple-choice format (cloze answers), extraction, scoring."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from synthmix.tasks import get_task
from synthmix.tasks.commonsense import LETTERS, held_out, parse_prompt, world

TASK = get_task("commonsense")


@pytest.fixture(scope="module")
def splits():
    return TASK.build("train", 2000, 0), TASK.build("test", 1000, 0)


# Determinism, train/test disjointness, gold answers scoring right: tests/test_task_contract.py


def test_test_asks_each_fact_once_in_a_phrasing_fine_tuning_never_uses_for_it(splits):
    train, test = splits
    question = lambda ex: parse_prompt(ex["prompt"])[0]  # noqa: E731
    assert not {question(ex) for ex in train} & {question(ex) for ex in test}
    taught = {(ex["object"], ex["attribute"]) for ex in train}
    assert all((ex["object"], ex["attribute"]) in taught for ex in test)  # in other words
    assert len({(ex["object"], ex["attribute"]) for ex in test}) == len(test) == 1000  # distinct facts
    assert held_out(0) != held_out(1)  # the seed picks the held-out phrasings


def test_the_corpus_states_every_objects_facts_and_asks_nothing():
    docs = TASK.corpus(random.Random(0))
    assert len(docs) == len(world()) and not any("?" in d for d in docs)
    for doc, (obj, facts) in zip(docs, world().items()):
        assert obj in doc and all(value in doc for value in facts.values())


def test_schema_and_gold(splits):
    train, test = splits
    for ex in train[:300] + test:
        assert ex["completion"].startswith(" ")
        assert len(ex["choices"]) == 5 and len(set(ex["choices"])) == 5
        assert ex["choices"][ex["label"]] == world()[ex["object"]][ex["attribute"]]
        assert TASK.choices(ex)[ex["label"]] == ex["completion"]
        assert parse_prompt(ex["prompt"])[1] == ex["choices"]


def test_gold_letters_are_spread_over_a_to_e(splits):
    counts = Counter(ex["label"] for ex in splits[1])
    assert set(counts) == set(range(5)) and max(counts.values()) < 0.35 * 1000


def test_the_answer_is_the_options_text_not_its_letter(splits):
    for ex in splits[1][:50]:
        assert ex["completion"] == " " + ex["choices"][ex["label"]]
        assert "Choices: A) " in ex["prompt"]  # the options are still listed with letters
    assert TASK.extract(" garage") == "garage"
    assert TASK.extract(" music room\nQuestion: more") == "music room"  # the first line
    assert TASK.extract("  ") is None and TASK.extract("") is None


def test_score_matches_the_named_option_and_rejects_letters_and_other_words(splits):
    ex = splits[1][0]
    gold, other = ex["choices"][ex["label"]], ex["choices"][(ex["label"] + 1) % 5]
    scored = TASK.score([ex] * 6, [f" {gold}", f" {gold.upper()} ", f" {other}", f" {'ABCDE'[ex['label']]}",
                                   f" {'ABCDE'[ex['label']]}) {gold}", " zoo"])
    assert [s.correct for s in scored] == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert scored[0].extracted == gold


def test_score_gold_right_and_other_options_wrong(splits):
    test = splits[1][:50]
    assert [s.correct for s in TASK.score(test, [ex["completion"] for ex in test])] == [1.0] * 50
    wrong = [TASK.choices(ex)[(ex["label"] + 1) % 5] for ex in test]
    scored = TASK.score(test, wrong)
    assert all(s.correct == 0.0 for s in scored)
    assert TASK.summarize(test, scored) == {"accuracy": 0.0}
    assert TASK.score(test[:1], [" nonsense"])[0].correct == 0.0  # no option's text


def test_trivial_baseline_is_chance(splits):
    assert TASK.trivial_baseline(*splits) == {"name": "chance", "score": 0.2}


def test_parse_instance_round_trips(splits):
    for ex in splits[1][:20]:
        parsed = TASK.parse_instance(TASK.render_instance(ex))
        assert {k: parsed[k] for k in ("prompt", "completion", "choices", "label")} == {
            k: ex[k] for k in ("prompt", "completion", "choices", "label")
        }
    assert TASK.parse_instance("Question: Where is a cat?\nAnswer: home") is None  # no choices
    assert TASK.parse_instance("Question: Where?\nChoices: A) a B) b C) c D) d E) e") is None  # no answer


def test_checks_flag_malformed_samples(splits):
    ex = splits[1][0]
    assert all(TASK.checks(ex).values())
    lettered = {**ex, "completion": f" {LETTERS[ex['label']]}) {ex['choices'][ex['label']]}"}
    assert TASK.checks(lettered) == {"prompt_format": True, "valid_choice": False, "single_line": True}
    assert TASK.checks({**ex, "completion": " zoo"})["valid_choice"] is False  # not an option
    assert TASK.checks({**ex, "completion": ex["completion"] + "\nQuestion: x"})["single_line"] is False
    assert TASK.checks({**ex, "prompt": "Question: hi\nAnswer:"})["prompt_format"] is False


def test_texts_are_short_and_instance_prompt_starts_a_question(splits):
    lo, hi = TASK.completion_chars
    assert all(lo <= len(ex["completion"]) <= hi for ex in splits[0])
    assert max(len(ex["prompt"] + ex["completion"]) for ex in splits[0]) < 250
    assert TASK.instance_prompt(random.Random(0)) == "Question:"
