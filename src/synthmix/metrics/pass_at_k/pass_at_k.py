"""Unbiased pass@k (Chen et al. 2021) as an `evaluate` metric."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
Unbiased pass@k estimator of Chen et al. (2021): for a problem with n sampled programs of
which c are correct, pass@k = 1 - C(n - c, k) / C(n, k), computed stably as
1 - prod(1 - k / arange(n - c + 1, n + 1)) and 1.0 when n - c < k; averaged over problems.
Inputs per problem: `n_samples` (n) and `n_correct` (c); kwarg `k` (an int or a list,
default [1]). A problem with n < k is an error naming the problem's index.
Returns {"pass@<k>": float} for each k.
"""

_CITATION = """\
@article{chen2021codex,
  title={Evaluating Large Language Models Trained on Code},
  author={Chen, Mark and Tworek, Jerry and Jun, Heewoo and others},
  journal={arXiv preprint arXiv:2107.03374}, year={2021}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    n_samples: list of int, programs sampled per problem.
    n_correct: list of int, how many of them passed.
    k: int or list of int (default [1]).
Returns:
    pass@<k>: float in [0, 1] for each k.
Examples:
    >>> m = synthmix.metrics.load("pass_at_k")
    >>> m.compute(n_samples=[4, 4], n_correct=[1, 0], k=[1, 2])
    {'pass@1': 0.125, 'pass@2': 0.25}
"""


def pass_at_k_estimate(n: int, c: int, k: int) -> float:
    """Unbiased probability that at least one of k draws (without replacement) is correct."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k(n_samples: Sequence[int], n_correct: Sequence[int], k: int | Iterable[int] = (1,)) -> dict:
    """Mean unbiased pass@k over problems for every k (see module description)."""
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not ks or any(int(x) != x or x < 1 for x in ks):
        raise ValueError(f"k must be a positive int or a non-empty list of them; got {k!r}.")
    if len(n_samples) != len(n_correct):
        raise ValueError(f"n_samples has {len(n_samples)} problems but n_correct has {len(n_correct)}.")
    if len(n_samples) == 0:
        raise ValueError("pass@k needs at least one problem; got none.")
    for i, (n, c) in enumerate(zip(n_samples, n_correct)):
        if not 0 <= c <= n:
            raise ValueError(f"problem {i}: n_correct={c} is not between 0 and n_samples={n}.")
        if n < max(ks):
            raise ValueError(f"problem {i}: n_samples={n} is smaller than k={max(ks)}.")
    return {
        f"pass@{kk}": float(np.mean([pass_at_k_estimate(int(n), int(c), int(kk)) for n, c in zip(n_samples, n_correct)]))
        for kk in ks
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PassAtK(evaluate.Metric):
    """`evaluate` wrapper around `pass_at_k`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"n_samples": datasets.Value("int64"), "n_correct": datasets.Value("int64")}),
        )

    def _compute(self, n_samples: list[int], n_correct: list[int], k: int | Iterable[int] = (1,)) -> dict:
        return pass_at_k(n_samples, n_correct, k=k)
