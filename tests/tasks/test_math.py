"""The math family: word problems, worked solutions, GSM8K answer extraction and scoring."""

from __future__ import annotations

import random
import re

import pytest

from synthmix.tasks import get_task

TASK = get_task("math")


@pytest.fixture(scope="module")
def splits():
    return TASK.build("train", 2000, 0), TASK.build("test", 200, 0)


# Determinism, train/test disjointness, gold answers scoring right: tests/test_task_contract.py


def test_the_split_is_a_fixed_partition_of_the_problem_space(splits):
    # no test prompt is a train prompt of another seed either
    assert not {ex["prompt"] for ex in TASK.build("train", 2000, 7)} & {ex["prompt"] for ex in splits[1]}


def test_solutions_are_correct_arithmetic(splits):
    for ex in splits[0][:500] + splits[1]:
        assert ex["completion"].startswith(" ")
        assert all(int(n) <= 10 for n in re.findall(r"\d+", ex["prompt"]))
        steps = re.findall(r"(\d+) ([+-]) (\d+) = (\d+)\.", ex["completion"])
        assert len(steps) in (2, 3)
        for a, op, b, c in steps:
            assert (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(c) >= 0
        assert steps[-1][3] == ex["answer"]
        assert ex["completion"].endswith(f"\n#### {ex['answer']}")


@pytest.mark.parametrize(
    "text, value",
    [
        (" 7 + 5 = 12.\n#### 12", 12),
        ("#### 1,234", 1234),
        ("#### -3", -3),
        ("#### 9.0", 9),
        ("#### 2\n#### 5", 5),  # the last one counts
        (" 7 + 5 = 12. The answer is 12", None),
        ("####9", None),
        ("#### .", None),
        ("#### 1.2.3", None),
    ],
)
def test_extract_follows_gsm8k(text, value):
    assert TASK.extract(text) == value


def test_score_compares_numerically():
    ex = {"answer": "9"}
    assert [s.correct for s in TASK.score([ex] * 4, ["#### 9.0", "#### 9", "#### 8", "9"])] == [1.0, 1.0, 0.0, 0.0]
    assert TASK.score([{"answer": "1234"}], ["#### 1,234"])[0].correct == 1.0


def test_gold_right_and_wrong_answer_wrong(splits):
    test = splits[1]
    assert TASK.summarize(test, TASK.score(test, [ex["completion"] for ex in test])) == {"accuracy": 1.0}
    wrong = [f"#### {int(ex['answer']) + 1}" for ex in test]
    assert TASK.summarize(test, TASK.score(test, wrong)) == {"accuracy": 0.0}


def test_trivial_baseline_is_the_most_frequent_train_answer():
    train = [{"answer": a} for a in ("3", "3", "5")]
    test = [{"answer": a} for a in ("3", "4", "3", "5")]
    assert TASK.trivial_baseline(train, test) == {"name": "most frequent train answer (3)", "score": 0.5}


def test_parse_instance_round_trips(splits):
    for ex in splits[1][:20]:
        parsed = TASK.parse_instance(TASK.render_instance(ex))
        assert parsed == {"prompt": ex["prompt"], "completion": ex["completion"], "answer": ex["answer"]}
    assert TASK.parse_instance("Question: Tom has 2.\nAnswer: 2 + 1 = 3.")["answer"] is None
    assert TASK.parse_instance("Tom has 2 apples. #### 2") is None


def test_checks_flag_malformed_samples(splits):
    ex = splits[1][0]
    assert TASK.checks(ex) == {"prompt_format": True, "answer_parses": True}
    assert TASK.checks({**ex, "completion": " 7 + 5 = 12."})["answer_parses"] is False
    assert TASK.checks({"prompt": "Question:", "completion": " x\n#### 3"})["prompt_format"] is False


def test_texts_are_short_and_instance_prompt_starts_a_question(splits):
    lo, hi = TASK.completion_chars
    assert all(lo <= len(ex["completion"]) <= hi for ex in splits[0])
    assert max(len(ex["prompt"] + ex["completion"]) for ex in splits[0]) < 260
    assert TASK.instance_prompt(random.Random(0)) == "Question:"
