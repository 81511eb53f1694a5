"""The great-expectations suite over generated samples, and the keep/drop/fail policy."""

from __future__ import annotations

import json

import pytest

from synthmix.tasks.base import TaskFamily
from synthmix.validation import (
    MalformedSamplesError,
    ValidationReport,
    apply_policy,
    default_validator,
    validate_samples,
)


class FakeMath(TaskFamily):
    """A test double: the answer must be an integer, completions 1..20 characters."""

    name = "fakemath"
    kind = "generate"
    score_name = "exact_match"
    max_new_tokens = 8
    completion_chars = (1, 20)

    def build(self, split, n, seed):
        return [{"id": f"{split}-{i}", "prompt": f"Q: {i}+1=", "completion": f" {i + 1}"} for i in range(n)]

    def extract(self, text):
        return text.strip()

    def score(self, examples, completions):
        return []

    def summarize(self, examples, scored):
        return {}

    def trivial_baseline(self, train, test):
        return {"name": "zero", "score": 0.0}

    def parse_instance(self, text):
        return None

    def checks(self, example):
        answer = (example.get("completion") or "").strip()
        return {"answer_parses": answer.lstrip("-").isdigit(), "has_prompt": bool(example.get("prompt"))}


TASK = FakeMath()
TEST_PROMPTS = [e["prompt"] for e in TASK.build("test", 5, 0)]  # "Q: 0+1=" .. "Q: 4+1="


def clean(n: int = 50) -> list[dict]:
    return [{"id": f"s{i}", "prompt": f"What is {i} plus 1?", "completion": f" {i + 1}", "origin": "iter1"} for i in range(n)]


def by_name(report: ValidationReport) -> dict[str, dict]:
    return {e["name"]: e for e in report.expectations}


def test_clean_set_passes():
    report = validate_samples(TASK, clean(), TEST_PROMPTS)
    assert report.success
    assert (report.n_samples, report.n_malformed) == (50, 0)
    assert report.malformed_ids == report.failing_examples == report.duplicate_ids == []
    assert report.failed_expectations == []
    names = set(by_name(report))
    assert {"prompt_not_null", "completion_not_null", "prompt_length", "completion_length",
            "check:answer_parses", "check:has_prompt", "not_leaked", "duplicate_rate", "not_empty"} == names
    assert by_name(report)["duplicate_rate"]["observed_value"] == 1.0
    assert by_name(report)["completion_length"]["kwargs"] == {"min_value": 1, "max_value": 20}
    json.dumps(report.to_dict())  # plain JSON


def test_bad_set_fails_the_right_expectations_and_names_the_ids():
    samples = clean(40)
    samples[1]["completion"] = " seven"  # malformed answer
    samples[2]["completion"] = ""  # empty completion
    samples[3]["completion"] = " " + "9" * 30  # too long (31 > 20)
    samples[4]["prompt"] = "  Q: 3+1= "  # a test prompt, leaked (after strip)
    samples[5]["completion"] = None  # null completion
    # 60 more copies of s0's pair -> 100 rows, 40 distinct: unique proportion 0.4 < 0.5
    samples += [{"id": f"dup{k}", "prompt": "What is 0 plus 1?", "completion": " 1"} for k in range(60)]

    report = validate_samples(TASK, samples, TEST_PROMPTS)
    assert not report.success
    exp = by_name(report)
    assert exp["check:answer_parses"]["unexpected_count"] == 3  # " seven", "", None
    assert set(report.failed_expectations) == {
        "check:answer_parses", "completion_length", "completion_not_null", "not_leaked", "duplicate_rate",
    }
    assert exp["completion_length"]["unexpected_count"] == 2  # "" and the 31 chars (None is "missing")
    assert exp["not_leaked"]["unexpected_count"] == 1
    assert exp["duplicate_rate"]["observed_value"] == pytest.approx(0.4)
    assert report.malformed_ids == ["s1", "s2", "s3", "s4", "s5"]
    assert report.n_malformed == 5
    failed = {e["id"]: set(e["failed"]) for e in report.failing_examples}
    assert failed == {
        "s1": {"check:answer_parses"},
        "s2": {"completion_length", "check:answer_parses"},
        "s3": {"completion_length"},
        "s4": {"not_leaked"},
        "s5": {"completion_not_null", "check:answer_parses"},
    }
    # duplicates are reported, not counted as malformed
    assert report.duplicate_ids == [f"dup{k}" for k in range(60)]
    json.dumps(report.to_dict())


def test_duplicate_rate_threshold_and_excerpt_truncation():
    samples = clean(10) + [{"id": f"d{k}", "prompt": "What is 0 plus 1?", "completion": " 1"} for k in range(10)]
    # 20 rows, 10 distinct: proportion 0.5
    assert validate_samples(TASK, samples, [], max_duplicate_rate=0.5).success
    assert not validate_samples(TASK, samples, [], max_duplicate_rate=0.4).success

    long = clean(3)
    long[0]["prompt"] = "x" * 5000  # over the 4000-char prompt bound
    report = validate_samples(TASK, long, [], max_examples=1)
    assert report.failed_expectations == ["prompt_length"]
    (example,) = report.failing_examples
    assert example["id"] == "s0" and len(example["prompt"]) < 320


def test_empty_set_fails():
    report = validate_samples(TASK, [], TEST_PROMPTS)
    assert not report.success and "not_empty" in report.failed_expectations


def test_context_is_created_once():
    assert default_validator() is default_validator()


def test_apply_policy_modes():
    samples = clean(6)
    samples[2]["completion"] = " two"
    before = [dict(s) for s in samples]
    report = validate_samples(TASK, samples, TEST_PROMPTS)
    assert report.malformed_ids == ["s2"]

    assert apply_policy(samples, report, "keep") == samples
    kept = apply_policy(samples, report, "drop")
    assert [s["id"] for s in kept] == ["s0", "s1", "s3", "s4", "s5"]
    with pytest.raises(MalformedSamplesError) as err:
        apply_policy(samples, report, "fail")
    message = str(err.value)
    assert "fakemath" in message and "1 of 6" in message and "check:answer_parses" in message and "s2" in message
    assert samples == before  # nothing mutated

    good = validate_samples(TASK, clean(6), TEST_PROMPTS)
    assert apply_policy(clean(6), good, "fail") == clean(6)
    with pytest.raises(ValueError, match="on_invalid"):
        apply_policy(samples, report, "ignore")  # type: ignore[arg-type]
