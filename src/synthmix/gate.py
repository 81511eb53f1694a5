"""The paper's early-warning rule, checked after every iteration against iteration 0.

Per task, with ECE0/score0 from iteration 0 and ECE/score from iteration i, the task is flagged
when either rule trips:

- ``ece_relative_rise``: ECE rose by more than `ece_relative_rise` relative to ECE0,
  i.e. (ECE - ECE0) / ECE0 > ece_relative_rise (0.5 = +50%).
- ``silent_drift``: ECE rose by more than `ece_absolute_rise` in absolute terms
  (ECE - ECE0 > ece_absolute_rise) while the score stayed flat:
  |score - score0| <= score_flat * score0. When score0 == 0 the relative band would be empty,
  so `score_flat` is read as an absolute band instead: |score - score0| <= score_flat.

When ECE0 == 0 the relative change is undefined (`ece_relative_change` is None) and only the
silent-drift rule (with its score condition) can flag the task. Comparisons are strict ("more
than"), with a 1e-9 slack so a value sitting on a threshold does not trip it through float noise.
Tasks of `reference` absent from `current` are not judged.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass

from synthmix import paths
from synthmix.params import Params
from synthmix.records import write_json

#: float slack on every threshold comparison
EPS = 1e-9


@dataclass
class TaskVerdict:
    """One task's comparison with iteration 0."""

    task: str
    flagged: bool
    #: one line per rule that tripped, starting with the rule's name
    reasons: list[str]
    ece0: float
    ece: float
    #: (ece - ece0) / ece0; None when ece0 == 0
    ece_relative_change: float | None
    score0: float
    score: float
    #: (score - score0) / score0; None when score0 == 0
    score_relative_change: float | None


@dataclass
class GateResult:
    """The gate's verdict on one iteration."""

    iteration: int
    flagged: bool
    tasks: list[TaskVerdict]

    def to_dict(self) -> dict:
        return asdict(self)

    def message(self, ratio: float | None = None) -> str:
        """A human-readable verdict; for a flagged result, which task tripped which rule with the
        numbers, and what to change (`ratio`, the current synthetic proportion, if given)."""
        if not self.flagged:
            names = ", ".join(t.task for t in self.tasks) or "no tasks"
            return f"iteration {self.iteration}: early-warning gate passed ({names})."
        flagged = [t for t in self.tasks if t.flagged]
        lines = [
            f"iteration {self.iteration}: early-warning gate tripped for {len(flagged)} of "
            f"{len(self.tasks)} task(s):"
        ]
        lines += [f"  - {t.task}: {reason}" for t in flagged for reason in t.reasons]
        now = f" (now {ratio:g})" if ratio is not None else ""
        lines.append(f"To change course: lower `ratio`{now} or set gate.mode=warn to continue.")
        return "\n".join(lines)


def _metric(table: dict[str, dict[str, float]], task: str, key: str, which: str) -> float:
    try:
        value = float(table[task][key])
    except KeyError:
        raise ValueError(f"gate: {which} metrics of task {task!r} have no {key!r}") from None
    if math.isnan(value):
        raise ValueError(f"gate: {which} {key!r} of task {task!r} is NaN")
    return value


def _judge(
    task: str,
    ref: dict[str, dict[str, float]],
    cur: dict[str, dict[str, float]],
    ece_relative_rise: float,
    ece_absolute_rise: float,
    score_flat: float,
) -> TaskVerdict:
    ece0, ece = _metric(ref, task, "ece", "iteration-0"), _metric(cur, task, "ece", "current")
    score0, score = _metric(ref, task, "score", "iteration-0"), _metric(cur, task, "score", "current")
    ece_rel = (ece - ece0) / ece0 if ece0 != 0 else None
    score_rel = (score - score0) / score0 if score0 != 0 else None

    reasons = []
    if ece_rel is not None and ece_rel > ece_relative_rise + EPS:
        reasons.append(
            f"ece_relative_rise: ECE {ece0:.4f} -> {ece:.4f} ({ece_rel:+.1%}, more than "
            f"+{ece_relative_rise:.0%} over iteration 0)"
        )
    band = score_flat * abs(score0) if score0 != 0 else score_flat
    flat = abs(score - score0) <= band + EPS
    if ece - ece0 > ece_absolute_rise + EPS and flat:
        band_text = (
            f"within ±{score_flat:.1%} of it" if score0 != 0 else f"within ±{score_flat:g} absolute"
        )
        reasons.append(
            f"silent_drift: ECE {ece0:.4f} -> {ece:.4f} ({ece - ece0:+.4f}, more than "
            f"+{ece_absolute_rise:g} absolute) while the score stayed flat ({score0:.4f} -> "
            f"{score:.4f}, {band_text})"
        )
    return TaskVerdict(task, bool(reasons), reasons, ece0, ece, ece_rel, score0, score, score_rel)


def check(
    iteration: int,
    reference: dict[str, dict[str, float]],
    current: dict[str, dict[str, float]],
    *,
    ece_relative_rise: float = 0.5,
    ece_absolute_rise: float = 0.05,
    score_flat: float = 0.02,
) -> GateResult:
    """Judge iteration `iteration`: `reference` (iteration 0) and `current` map task ->
    {"score": ..., "ece": ...}. A task in `current` missing from `reference` is a ValueError."""
    missing = [t for t in current if t not in reference]
    if missing:
        raise ValueError(
            f"gate: task(s) {missing} have iteration-{iteration} metrics but none for iteration 0 "
            f"(known there: {sorted(reference)})"
        )
    verdicts = [
        _judge(t, reference, current, ece_relative_rise, ece_absolute_rise, score_flat) for t in current
    ]
    return GateResult(iteration=iteration, flagged=any(v.flagged for v in verdicts), tasks=verdicts)


def _table(iteration: int) -> dict[str, dict[str, float]]:
    path = paths.scores(iteration)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: evaluate iteration {iteration} first (dvc repro)")
    return {task: {"score": m["score"], "ece": m["ece"]} for task, m in json.loads(path.read_text()).items()}


def check_iteration(params: Params, iteration: int) -> GateResult:
    """The gate's verdict on `iteration`, from the metric files, at params.yaml's thresholds."""
    cfg = params.gate
    current = {t: m for t, m in _table(iteration).items() if t in params.tasks}
    return check(iteration, _table(0), current, ece_relative_rise=cfg.ece_relative_rise,
                 ece_absolute_rise=cfg.ece_absolute_rise, score_flat=cfg.score_flat)


def run(params: Params, iteration: int) -> None:
    """Stage `gate`: record the verdict (the next iteration's generate stage enforces `halt`).

    The metric file holds numbers and flags only (what `dvc metrics` tabulates); the reasons, in
    words, go to the log and to the verdict file beside it.
    """
    result = check_iteration(params, iteration)
    message = result.message(params.ratio)
    numbers = {"flagged": result.flagged, "halts": result.flagged and params.gate.mode == "halt"}
    for t in result.tasks:
        numbers[t.task] = {"flagged": t.flagged, "ece_relative_change": t.ece_relative_change,
                           "score_relative_change": t.score_relative_change}
    write_json(paths.gate(iteration), numbers)
    write_json(paths.gate(iteration).with_suffix(".verdict.json"), {**result.to_dict(), "message": message})
    print(message)


def enforce(params: Params, previous: int) -> int:
    """Before iteration `previous`+1 starts: 0 to go on, or 3 (with the reasons) when the gate's
    recorded verdict on iteration `previous` says halt."""
    path = paths.gate(previous)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the gate of iteration {previous} first (dvc repro)")
    if not json.loads(path.read_text())["halts"]:
        return 0
    verdict = json.loads(path.with_suffix(".verdict.json").read_text())
    print(f"{verdict['message']}\ngate.mode=halt: iteration {previous + 1} not started; "
          f"everything up to iteration {previous} is kept.", file=sys.stderr)
    return 3
