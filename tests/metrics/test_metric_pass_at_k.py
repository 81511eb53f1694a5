"""pass@k: exact combinatorics, pass@1 = c/n, and the n < k error."""

from __future__ import annotations

import math
import random

import pytest

from synthmix.metrics import load, pass_at_k, pass_at_k_estimate


def test_matches_exact_combinatorics() -> None:
    rng = random.Random(0)
    for _ in range(500):
        n = rng.randint(1, 60)
        c, k = rng.randint(0, n), rng.randint(1, n)
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k_estimate(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)


def test_pass_at_1_is_the_mean_fraction_correct() -> None:
    n, c = [10, 5, 20, 3], [3, 0, 20, 1]
    assert pass_at_k(n, c)["pass@1"] == pytest.approx(sum(ci / ni for ni, ci in zip(n, c)) / 4, abs=1e-12)


def test_several_k_and_edge_cases() -> None:
    out = pass_at_k([4, 4], [1, 0], k=[1, 2, 4])
    assert out == pytest.approx({"pass@1": 0.125, "pass@2": 0.25, "pass@4": 0.5})
    assert pass_at_k([5], [5], k=3) == {"pass@3": 1.0}
    assert pass_at_k([5], [0], k=[5]) == {"pass@5": 0.0}


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="problem 1: n_samples=3 is smaller than k=5"):
        pass_at_k([10, 3], [1, 1], k=[1, 5])
    with pytest.raises(ValueError, match="problem 0: n_correct=4"):
        pass_at_k([3], [4])
    with pytest.raises(ValueError, match="k must be"):
        pass_at_k([3], [1], k=[0])


def test_evaluate_module_is_the_same_computation() -> None:
    n, c = [20, 20, 20], [0, 7, 19]
    assert load("pass_at_k").compute(n_samples=n, n_correct=c, k=[1, 10]) == pass_at_k(n, c, k=[1, 10])
    with pytest.raises(ValueError, match="problem 2"):
        load("pass_at_k").compute(n_samples=[5, 5, 1], n_correct=[0, 0, 0], k=[2])
