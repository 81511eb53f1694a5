"""synthmix's metrics, each an `evaluate` module loaded from its local folder (never the hub).

`load(name)` returns the `evaluate.EvaluationModule` (cached per name in this process); the
plain functions below are the same code the modules' `_compute` calls, for callers that do
not want the Arrow round-trip.
"""

from __future__ import annotations

import threading
from pathlib import Path

import evaluate

from synthmix.metrics.distinct_n.distinct_n import distinct_n
from synthmix.metrics.ece.ece import expected_calibration_error
from synthmix.metrics.pass_at_k.pass_at_k import pass_at_k, pass_at_k_estimate
from synthmix.metrics.self_bleu.self_bleu import self_bleu

__all__ = [
    "METRIC_NAMES", "distinct_n", "expected_calibration_error", "load", "module_path",
    "pass_at_k", "pass_at_k_estimate", "self_bleu",
]

METRIC_NAMES = ("ece", "self_bleu", "distinct_n", "pass_at_k")
_cache: dict[str, evaluate.EvaluationModule] = {}
_lock = threading.Lock()


def module_path(name: str) -> Path:
    """Folder of metric `name` (holding `<name>/<name>.py`)."""
    if name not in METRIC_NAMES:  # anything else would make evaluate.load ask the hub
        raise ValueError(f"unknown metric {name!r}; choose from {METRIC_NAMES}.")
    return Path(__file__).parent / name


def load(name: str) -> evaluate.EvaluationModule:
    """The `evaluate` module of metric `name`, loaded by absolute local path, once per process."""
    path = module_path(name)
    with _lock:
        if name not in _cache:
            # Absolute dir path => LocalEvaluationModuleFactory: no hub lookup, online or not.
            # keep_in_memory: no Arrow cache files or file locks under ~/.cache for each compute.
            _cache[name] = evaluate.load(str(path.resolve()), keep_in_memory=True)
        return _cache[name]
