"""Stage `summary`: every iteration's score and ECE against iteration 0, per task.

Writes metrics/summary.json (deltas against iteration 0, the gate's flags; what `dvc metrics diff`
shows between experiments) and metrics/curves/<metric>.json (one row per iteration, one column
per task; what `dvc plots show` draws as one line per task).
"""

from __future__ import annotations

import json
import re
from typing import Any

from synthmix import paths
from synthmix.params import Params
from synthmix.records import write_json

CURVES = ("score", "ece", "self_bleu", "distinct_2")


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


def run(params: Params) -> None:
    by_iteration = _iterations()
    gates = {}
    for path in (paths.METRICS / "gate").glob("iter*[0-9].json"):
        gates[int(path.stem.removeprefix("iter"))] = json.loads(path.read_text())
    write_json(paths.METRICS / "summary.json", summarize(params, by_iteration, dict(sorted(gates.items()))))
    for metric in CURVES:
        rows = [
            {"iteration": it, **{t: metrics[t][metric] for t in params.tasks if t in metrics}}
            for it, metrics in by_iteration.items()
        ]
        write_json(paths.METRICS / "curves" / f"{metric}.json", rows)
    last = max(by_iteration)
    for task in params.tasks:
        if task in by_iteration[last]:
            b, m = by_iteration[0][task], by_iteration[last][task]
            print(f"{task}: score {b['score']:.3f} -> {m['score']:.3f}, ECE {b['ece']:.3f} -> {m['ece']:.3f} (iter0 -> iter{last})")
