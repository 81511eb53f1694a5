"""Expected calibration error (ECE) with a reliability table, as an `evaluate` metric."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
Expected calibration error (Naeini et al. 2015; Guo et al. 2017) of per-example confidences.
Inputs per example: `confidences` (float in [0, 1]) and `correct` (0 or 1); kwarg `n_bins`
(default 10). Equal-width bins over [0, 1]: bin i is the half-open interval (i/n, (i+1)/n]
(edges computed as i / n in float64), except that confidence 0 goes to the first bin.
ECE = sum over bins of (count / N) * |accuracy in bin - mean confidence in bin|.
Returns {"ece": float, "reliability": [{"bin_lower", "bin_upper", "confidence", "accuracy",
"count"}, ...]} with one row per bin; empty bins have count 0 and confidence/accuracy None.
Note: torchmetrics 1.x bins [i/n, (i+1)/n) and puts confidence exactly 1.0 in an extra bin
of its own, so the two differ only for confidences lying exactly on a bin edge.
"""

_CITATION = """\
@inproceedings{guo2017calibration,
  title={On Calibration of Modern Neural Networks},
  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},
  booktitle={ICML}, year={2017}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    confidences: list of float in [0, 1], the model's confidence in its answer.
    correct: list of int (0/1), whether that answer was right.
    n_bins: number of equal-width bins (default 10).
Returns:
    ece: float; reliability: list of per-bin dicts.
Examples:
    >>> ece = synthmix.metrics.load("ece")
    >>> ece.compute(confidences=[0.75, 0.25], correct=[1, 1], n_bins=2)["ece"]
    0.5
"""


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[int], n_bins: int = 10
) -> dict:
    """ECE and reliability table of `confidences` against 0/1 `correct` (see module description)."""
    conf = np.asarray(confidences, dtype=np.float64).reshape(-1)
    corr = np.asarray(correct).reshape(-1)
    if conf.size == 0:
        raise ValueError("ECE needs at least one example; got empty confidences.")
    if conf.size != corr.size:
        raise ValueError(f"confidences has {conf.size} values but correct has {corr.size}.")
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int; got {n_bins!r}.")
    bad = np.flatnonzero(~((conf >= 0.0) & (conf <= 1.0)))  # also catches NaN
    if bad.size:
        raise ValueError(f"confidences[{bad[0]}] = {float(conf[bad[0]])} is outside [0, 1].")
    bad = np.flatnonzero((corr != 0) & (corr != 1))
    if bad.size:
        raise ValueError(f"correct[{bad[0]}] = {corr[bad[0]].item()!r} is not 0 or 1.")
    corr = corr.astype(np.float64)

    edges = np.arange(n_bins + 1) / n_bins
    # side="left" puts x == edge[i+1] into bin i, i.e. bins are (lower, upper]; 0 -> bin 0.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=corr, minlength=n_bins)

    ece = 0.0
    reliability = []
    for i in range(n_bins):
        row = {"bin_lower": float(edges[i]), "bin_upper": float(edges[i + 1]), "count": int(count[i])}
        if count[i]:
            mean_conf, acc = conf_sum[i] / count[i], acc_sum[i] / count[i]
            ece += count[i] / conf.size * abs(acc - mean_conf)
            row.update(confidence=float(mean_conf), accuracy=float(acc))
        else:
            row.update(confidence=None, accuracy=None)
        reliability.append(row)
    return {"ece": float(ece), "reliability": reliability}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Ece(evaluate.Metric):
    """`evaluate` wrapper around `expected_calibration_error`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"confidences": datasets.Value("float64"), "correct": datasets.Value("int64")}
            ),
        )

    def _compute(self, confidences: list[float], correct: list[int], n_bins: int = 10) -> dict:
        return expected_calibration_error(confidences, correct, n_bins=n_bins)
