"""Stage `summary`: every iteration's score and ECE against iteration 0, per task.

Writes metrics/summary.json (deltas against iteration 0, the gate's flags; what `dvc metrics diff`
shows between experiments) and, for `dvc plots show` (dvc.yaml's `plots`):

- metrics/curves/<metric>.json: one row per iteration, one column per task (one line per task),
  for the score, ECE, Self-BLEU, Distinct-2 and the synthetic-label accuracy;
- metrics/curves/reliability.json: every task's and iteration's reliability-diagram rows (the
  headline bin count), drawn by .dvc/plots/reliability.json as one diagram per task and iteration
  with the perfect-calibration diagonal;
- metrics/curves/train_loss.json: each task's training loss per iteration (at most `CURVE_POINTS`
  points a curve, window means), drawn by .dvc/plots/per_task_curves.json one colour per task.
"""

from __future__ import annotations

import json
import re
from typing import Any

from synthmix import paths
from synthmix.params import Params
from synthmix.records import write_json

CURVES = ("score", "ece", "self_bleu", "distinct_2")
#: points per training curve in train_loss.json (window means of the logged steps)
CURVE_POINTS = 150


def _iterations() -> dict[int, dict[str, Any]]:
    found = {}
    for path in (paths.METRICS / "iterations").glob("iter*.json"):
        match = re.fullmatch(r"iter(\d+)\.json", path.name)
        if match:
            found[int(match.group(1))] = json.loads(path.read_text())
    if 0 not in found:
        raise FileNotFoundError("metrics/iterations/iter0.json is missing: run the baseline first (dvc repro)")
    return dict(sorted(found.items()))


def _relative(new: float, old: float) -> float | None:
    return None if old == 0 else (new - old) / old


def summarize(params: Params, by_iteration: dict[int, dict[str, Any]], gates: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per task and iteration: score, ECE and their changes since iteration 0; gate flags."""
    base = by_iteration[0]
    out: dict[str, Any] = {}
    for task in params.tasks:
        rows = {}
        for it, metrics in by_iteration.items():
            if task not in metrics:
                continue
            m, b = metrics[task], base[task]
            rows[f"iter{it}"] = {
                "score": m["score"],
                "ece": m["ece"],
                "score_delta": m["score"] - b["score"],
                "score_relative_change": _relative(m["score"], b["score"]),
                "ece_delta": m["ece"] - b["ece"],
                "ece_relative_change": _relative(m["ece"], b["ece"]),
            }
        out[task] = rows
    out["gate"] = {f"iter{it}": {"flagged": g.get("flagged", False)} for it, g in gates.items()}
    out["iterations_run"] = max(by_iteration)
    return out


def synthetic_accuracy_rows(params: Params) -> list[dict[str, Any]]:
    """One row per iteration with synthetic data: each task's synthetic-label accuracy."""
    rows = []
    for path in sorted((paths.METRICS / "validation").glob("iter*.json"), key=lambda p: int(p.stem[4:])):
        report = json.loads(path.read_text())
        rows.append({"iteration": int(path.stem[4:]),
                     **{t: report[t]["synthetic_accuracy"] for t in params.tasks if "synthetic_accuracy" in report.get(t, {})}})
    return rows


def reliability_rows(params: Params, iterations: list[int]) -> list[dict[str, Any]]:
    """Every task's reliability rows at the headline bin count, iteration by iteration."""
    rows = []
    for it in iterations:
        path = paths.reliability(it, params.evaluate.ece_bins[0])
        if path.exists():
            rows.extend(r for r in json.loads(path.read_text()) if r.get("task") in params.tasks)
    return rows


def train_loss_rows(params: Params, iterations: list[int]) -> list[dict[str, Any]]:
    """Each task's training loss per iteration, downsampled to at most `CURVE_POINTS` window means."""
    rows = []
    for it in iterations:
        for task in params.tasks:
            path = paths.train_log(it, task) / "plots" / "metrics" / "loss.tsv"
            if not path.exists():
                continue
            lines = path.read_text().split("\n")
            header = lines[0].split("\t")
            values = [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]
            width = max(1, -(-len(values) // CURVE_POINTS))
            for start in range(0, len(values), width):
                window = values[start:start + width]
                rows.append({"iteration": it, "task": task, "step": int(window[-1]["step"]),
                             "loss": sum(float(v["loss"]) for v in window) / len(window)})
    return rows


def run(params: Params) -> None:
    by_iteration = _iterations()
    gates = {}
    for path in (paths.METRICS / "gate").glob("iter*[0-9].json"):
        gates[int(path.stem.removeprefix("iter"))] = json.loads(path.read_text())
    summary = summarize(params, by_iteration, dict(sorted(gates.items())))
    synthetic = synthetic_accuracy_rows(params)
    for row in synthetic:  # the share of each iteration's synthetic answers that were right
        for task in params.tasks:
            if task in row and f"iter{row['iteration']}" in summary.get(task, {}):
                summary[task][f"iter{row['iteration']}"]["synthetic_accuracy"] = row[task]
    write_json(paths.METRICS / "summary.json", summary)
    for metric in CURVES:
        rows = [
            {"iteration": it, **{t: metrics[t][metric] for t in params.tasks if t in metrics}}
            for it, metrics in by_iteration.items()
        ]
        write_json(paths.METRICS / "curves" / f"{metric}.json", rows)
    write_json(paths.METRICS / "curves" / "synthetic_accuracy.json", synthetic)
    write_json(paths.METRICS / "curves" / "reliability.json", reliability_rows(params, list(by_iteration)))
    write_json(paths.METRICS / "curves" / "train_loss.json", train_loss_rows(params, list(by_iteration)))
    last = max(by_iteration)
    for task in params.tasks:
        if task in by_iteration[last]:
            b, m = by_iteration[0][task], by_iteration[last][task]
            right = summary[task].get(f"iter{last}", {}).get("synthetic_accuracy")
            print(f"{task}: score {b['score']:.3f} -> {m['score']:.3f}, ECE {b['ece']:.3f} -> {m['ece']:.3f} (iter0 -> iter{last})"
                  + ("" if right is None else f"; iteration {last}'s synthetic answers {right:.0%} right"))
