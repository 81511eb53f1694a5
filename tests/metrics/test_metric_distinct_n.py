"""Distinct-n: hand-worked values and an independent nltk.util.ngrams computation."""

from __future__ import annotations

import random

import pytest
from nltk.util import ngrams

from synthmix.metrics import distinct_n, load


def test_hand_worked_example_never_crosses_samples() -> None:
    # unigrams a b a | a c -> 3 distinct / 5; bigrams (a b)(b a) | (a c) -> 3 / 3, no (a a) across
    assert distinct_n(["a b a", "a c"]) == {"distinct_1": 0.6, "total_1": 5, "distinct_2": 1.0, "total_2": 3}


def test_case_is_kept_and_whitespace_splits() -> None:
    out = distinct_n(["The the\tthe", "  the  "], ns=[1])
    assert out == {"distinct_1": 0.5, "total_1": 4}


@pytest.mark.parametrize("seed", range(3))
def test_matches_an_independent_nltk_computation(seed: int) -> None:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(15)]
    samples = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(50)]
    out = distinct_n(samples, ns=[1, 2, 3])
    for n in (1, 2, 3):
        grams = [g for s in samples for g in ngrams(s.split(), n)]
        assert out[f"total_{n}"] == len(grams)
        assert out[f"distinct_{n}"] == pytest.approx(len(set(grams)) / len(grams), abs=1e-15)


def test_no_ngrams_gives_zero() -> None:
    assert distinct_n(["a", "", "b"], ns=[2]) == {"distinct_2": 0.0, "total_2": 0}
    assert distinct_n([]) == {"distinct_1": 0.0, "total_1": 0, "distinct_2": 0.0, "total_2": 0}
    with pytest.raises(ValueError, match="ns"):
        distinct_n(["a b"], ns=[0])


def test_evaluate_module_is_the_same_computation() -> None:
    samples = ["x y z x", "y z", "", "z z z"]
    assert load("distinct_n").compute(predictions=samples, ns=[1, 2, 3]) == distinct_n(samples, ns=[1, 2, 3])
