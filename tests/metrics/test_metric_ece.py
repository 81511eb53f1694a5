"""ECE: agrees with torchmetrics off bin edges, a hand-worked example, and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error

from synthmix.metrics import expected_calibration_error, load


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("n_bins", [10, 15])
def test_matches_torchmetrics_on_random_inputs(seed: int, n_bins: int) -> None:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.0, 1.0, size=2000)
    correct = (rng.uniform(size=conf.size) < conf**1.7).astype(int)  # a miscalibrated model
    # Off the edges torchmetrics' [lower, upper) bins equal our (lower, upper] bins.
    assert not np.any(np.isclose(conf * n_bins, np.round(conf * n_bins), rtol=0, atol=1e-9))
    ours = expected_calibration_error(conf.tolist(), correct.tolist(), n_bins=n_bins)
    ref = binary_calibration_error(
        torch.tensor(conf, dtype=torch.float64), torch.tensor(correct), n_bins=n_bins, norm="l1"
    )
    assert ours["ece"] == pytest.approx(float(ref), abs=1e-6)
    assert ours["ece"] > 0.01
    assert sum(row["count"] for row in ours["reliability"]) == conf.size


def test_hand_worked_example_with_values_on_bin_edges() -> None:
    # 5 bins: (0,.2] (.2,.4] (.4,.6] (.6,.8] (.8,1]; 0.8 sits on an edge and belongs to bin 3.
    out = expected_calibration_error([0.1, 0.3, 0.3, 0.8, 0.9, 1.0], [0, 1, 0, 1, 1, 0], n_bins=5)
    # (|0-.1|*1 + |.5-.3|*2 + |1-.8|*1 + |.5-.95|*2) / 6
    assert out["ece"] == pytest.approx(1.6 / 6, abs=1e-12)
    rel = out["reliability"]
    assert [r["count"] for r in rel] == [1, 2, 0, 1, 2]
    assert rel[2]["confidence"] is None and rel[2]["accuracy"] is None
    assert rel[3] == pytest.approx({"bin_lower": 0.6, "bin_upper": 0.8, "count": 1, "confidence": 0.8, "accuracy": 1.0})
    assert rel[4]["confidence"] == pytest.approx(0.95) and rel[4]["accuracy"] == 0.5


def test_zero_confidence_goes_to_the_first_bin() -> None:
    out = expected_calibration_error([0.0, 0.0], [0, 0], n_bins=4)
    assert out["reliability"][0]["count"] == 2 and out["ece"] == 0.0


def test_perfectly_confident_and_correct_is_zero() -> None:
    assert expected_calibration_error([1.0] * 7, [1] * 7)["ece"] == 0.0


def test_input_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="at least one example"):
        expected_calibration_error([], [])
    with pytest.raises(ValueError, match=r"confidences\[2\] = 1.5"):
        expected_calibration_error([0.2, 0.4, 1.5, -1.0], [1, 0, 1, 1])
    with pytest.raises(ValueError, match=r"confidences\[1\]"):
        expected_calibration_error([0.2, float("nan")], [1, 0])
    with pytest.raises(ValueError, match=r"correct\[1\] = 2"):
        expected_calibration_error([0.2, 0.4], [1, 2])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0.2], [1], n_bins=0)


def test_evaluate_module_is_the_same_computation() -> None:
    rng = np.random.default_rng(7)
    conf, correct = rng.uniform(size=300).tolist(), rng.integers(0, 2, size=300).tolist()
    module = load("ece")
    assert module.compute(confidences=conf, correct=correct, n_bins=15) == expected_calibration_error(
        conf, correct, n_bins=15
    )
    with pytest.raises(ValueError, match="at least one example"):
        module.compute(confidences=[], correct=[])
    with pytest.raises(ValueError, match=r"confidences\[0\]"):
        module.compute(confidences=[3.0], correct=[1])
