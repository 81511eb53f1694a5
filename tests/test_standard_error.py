"""Every score is reported with its standard error over test items (evaluation.standard_error)."""

from __future__ import annotations

import math
import random

import pytest

from synthmix.evaluation import item_scores, standard_error
from synthmix.tasks import get_task
from synthmix.tasks.base import Scored


def test_accuracy_se_is_the_binomial_formula():
    task = get_task("math")
    scored = [Scored(1.0 if i < 300 else 0.0, None, {}) for i in range(1000)]
    se = standard_error(task, [{}] * 1000, scored, 0.3, seed=0)
    # sample standard deviation (n - 1) over sqrt(n): sqrt(p (1 - p) / (n - 1))
    assert se == pytest.approx(math.sqrt(0.3 * 0.7 / 999), rel=1e-9)


def test_reading_se_is_over_the_item_f1_not_the_exact_match():
    task = get_task("reading")
    rng = random.Random(0)
    scored = [Scored(0.0, "x", {"f1": rng.random(), "has_answer": True}) for _ in range(400)]
    values = item_scores(task, scored)
    assert values == [s.extra["f1"] for s in scored]
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    assert standard_error(task, [{}] * 400, scored, mean, seed=0) == pytest.approx(sd / 20)


def test_a_score_that_is_not_an_item_mean_gets_a_bootstrap_se():
    class Ratio:  # e.g. a YAML task's binary F1: aggregated, not averaged
        score_name = "f1"

        def summarize(self, examples, scored):
            hits = sum(s.correct for s in scored)
            return {"f1": hits / (hits + 50)}

    scored = [Scored(float(i % 2), None, {}) for i in range(500)]
    score = Ratio().summarize([], scored)["f1"]
    se = standard_error(Ratio(), [{}] * 500, scored, score, seed=0)  # type: ignore[arg-type]
    assert 0.005 < se < 0.05
    assert se == standard_error(Ratio(), [{}] * 500, scored, score, seed=0)  # seeded: reproducible


def test_one_item_has_no_standard_error():
    assert math.isnan(standard_error(get_task("math"), [{}], [Scored(1.0, None, {})], 1.0, seed=0))
