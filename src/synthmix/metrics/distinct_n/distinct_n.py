"""Distinct-n (lexical diversity of a set of generations) as an `evaluate` metric."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import datasets
import evaluate

_DESCRIPTION = """\
Distinct-n (Li et al. 2016): for each n in `ns` (default [1, 2]), the number of distinct
n-grams divided by the total number of n-grams over the whole set of generations. n-grams
never cross sample boundaries. Tokenisation is whitespace splitting (str.split()) with
lowercase=False: case is kept, so "The" and "the" are different tokens.
Returns {"distinct_<n>": float, "total_<n>": int} for each n; when there are no n-grams
at all (e.g. every sample shorter than n), distinct_<n> is 0.0 and total_<n> is 0.
"""

_CITATION = """\
@inproceedings{li2016diversity,
  title={A Diversity-Promoting Objective Function for Neural Conversation Models},
  author={Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill},
  booktitle={NAACL-HLT}, year={2016}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list of str, the generated samples.
    ns: n-gram orders to report (default [1, 2]).
Returns:
    distinct_<n>: float in [0, 1]; total_<n>: int, for each n.
Examples:
    >>> m = synthmix.metrics.load("distinct_n")
    >>> m.compute(predictions=["a b a", "a c"])
    {'distinct_1': 0.6, 'total_1': 5, 'distinct_2': 1.0, 'total_2': 3}
"""


def distinct_n(samples: Sequence[str], ns: Iterable[int] = (1, 2)) -> dict:
    """Distinct-n ratios and n-gram totals of `samples` (see module description)."""
    ns = list(ns)
    if not ns or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in ns):
        raise ValueError(f"ns must be a non-empty list of positive ints; got {ns!r}.")
    tokens = [s.split() for s in samples]
    result: dict = {}
    for n in ns:
        grams = [tuple(t[j : j + n]) for t in tokens for j in range(len(t) - n + 1)]
        result[f"distinct_{n}"] = len(set(grams)) / len(grams) if grams else 0.0
        result[f"total_{n}"] = len(grams)
    return result


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DistinctN(evaluate.Metric):
    """`evaluate` wrapper around `distinct_n`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str], ns: Iterable[int] = (1, 2)) -> dict:
        return distinct_n(predictions, ns=ns)
