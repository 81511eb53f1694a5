"""The code family: function problems, body extraction, program assembly, sandboxed scoring."""

from __future__ import annotations

import ast
import importlib.util
import random

import pytest

from synthmix.tasks import get_task
from synthmix.tasks.code import program

TASK = get_task("code")
needs_sandbox = pytest.mark.skipif(
    importlib.util.find_spec("synthmix.sandbox") is None, reason="synthmix.sandbox not available yet"
)


@pytest.fixture(scope="module")
def splits():
    return TASK.build("train", 2000, 0), TASK.build("test", 200, 0)


def _runs(ex: dict, body: str) -> bool:
    """Run prompt + body + tests in-process (trusted: our own generated code)."""
    try:
        exec(compile(program(ex["prompt"], body, ex["tests"]), "<candidate>", "exec"), {})
    except Exception:
        return False
    return True


# Determinism, train/test disjointness, gold answers scoring right: tests/test_task_contract.py


def test_enough_test_problems_for_no_repeats(splits):
    assert len({ex["prompt"] for ex in splits[1]}) == 200


def test_schema(splits):
    for ex in splits[1]:
        assert ex["prompt"].startswith(f"def {ex['entry_point']}(") and ex["prompt"].endswith('"""\n')
        assert ex["completion"].startswith("    ") and ex["completion"].endswith("\n")
        assert ex["tests"].count(f"assert {ex['entry_point']}(") == 4


def test_every_gold_body_passes_and_an_empty_one_fails(splits):
    train, test = splits
    assert all(_runs(ex, ex["completion"]) for ex in train + test)
    assert not any(_runs(ex, "    pass\n") for ex in test)


def test_extract_cuts_the_body_where_the_function_ends():
    assert TASK.extract("    return x + 3\n") == "    return x + 3\n"
    assert TASK.extract("    y = x\n\n    return y\ndef other():\n    pass\n") == "    y = x\n\n    return y"
    assert TASK.extract("    return x\nprint(1)") == "    return x"
    assert TASK.extract("return x + 3\n") is None
    assert TASK.extract("\n\n") is None


def test_program_puts_function_then_tests():
    source = program('def f(x):\n    """Return x."""\n', "    return x\n\n", "assert f(1) == 1")
    assert source == 'def f(x):\n    """Return x."""\n    return x\n\n\nassert f(1) == 1\n'
    ast.parse(source)


def test_trivial_baseline_is_zero(splits):
    assert TASK.trivial_baseline(*splits) == {"name": "empty body", "score": 0.0}


def test_parse_instance_round_trips(splits):
    for ex in splits[1][:20]:
        parsed = TASK.parse_instance(TASK.render_instance(ex))
        gold = {"prompt": ex["prompt"], "completion": ex["completion"], "entry_point": ex["entry_point"]}
        assert parsed == {**gold, "tests": None}
    trailing = TASK.parse_instance(TASK.render_instance(splits[1][0]) + "def more():\n")
    assert trailing["completion"] == splits[1][0]["completion"].rstrip("\n")
    assert TASK.parse_instance("def f(x):\nreturn x") is None
    assert TASK.parse_instance('def f(x):\n    """Doc."""\nreturn x\n') is None


def test_checks_flag_malformed_samples(splits):
    ex = splits[1][0]
    assert TASK.checks(ex) == {"prompt_format": True, "has_body": True, "code_parses": True}
    assert TASK.checks({**ex, "completion": "    return (x +\n"})["code_parses"] is False
    assert TASK.checks({**ex, "completion": "return x\n"})["has_body"] is False
    assert TASK.checks({**ex, "prompt": "def f(x):\n"})["prompt_format"] is False


def test_instance_prompt_and_lengths(splits):
    lo, hi = TASK.completion_chars
    assert all(lo <= len(ex["completion"]) <= hi for ex in splits[0])
    assert TASK.instance_prompt(random.Random(0)) == "def "


@needs_sandbox
def test_sandbox_scoring(splits):
    ex = splits[1][0]
    completions = [ex["completion"], "    return 12345\n", "    return (\n", "no body here"]
    scored = TASK.score([ex] * len(completions), completions)
    assert [s.correct for s in scored] == [1.0, 0.0, 0.0, 0.0]
    assert [s.extra["status"] for s in scored] == ["passed", "failed", "failed", "no_body"]
    assert TASK.summarize([ex] * len(completions), scored) == {"pass@1": 0.25}
    assert TASK.score([{**ex, "tests": None}], [ex["completion"]])[0].extra["status"] == "no_tests"


@needs_sandbox
def test_sandbox_limits_are_the_instance_s():
    from synthmix.tasks.code import Code

    ex = {"prompt": 'def f(x):\n    """Loop."""\n', "tests": "assert f(1) == 1"}
    scored = Code(timeout_s=0.5).score([ex], ["    while True:\n        pass\n"])
    assert scored[0].correct == 0.0 and scored[0].extra["status"] == "timeout"
