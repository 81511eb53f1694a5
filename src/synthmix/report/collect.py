"""Every experiment of a repository, read through `dvc exp show --json`, as typed `Run` records.

Rows come from DVC itself (the workspace, each baseline commit and every experiment derived from
it), with their params.yaml and metric files. Rows that are still queued or running, failed, or
have no iteration metrics are skipped (and counted). Two rows with identical params are the same
experiment (the pipeline is deterministic): the newest is kept, so re-running a study after a
code change replaces the stale numbers instead of averaging them in.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

from synthmix.params import ParamsError, parse_params

#: params that define the study's axes; every other param is part of an experiment's "setting"
AXES = ("ratio", "seed", "model", "mix.mode")
#: params that change how fast a run goes but not what it computes
IGNORED = ("threads", "report", "sweep")

_ITER_FILE = re.compile(r"(?:^|/)metrics/(iterations|gate|validation)/iter(\d+)\.json$")


@dataclass
class Run:
    """One finished experiment: its axes, its setting, and every per-iteration metric."""

    name: str
    rev: str
    created: str
    ratio: float
    seed: int
    model: str
    mix_mode: str
    #: every other param, flattened ("train.epochs": 3, ...), for grouping comparable runs
    setting: dict[str, Any]
    tasks: list[str]
    #: iteration -> task -> metric -> value (score, ece, self_bleu, distinct_1, distinct_2, ...)
    metrics: dict[int, dict[str, dict[str, float]]]
    #: iteration -> task -> flagged by the gate (its rule: ECE rise against iteration 0)
    gate: dict[int, dict[str, bool]] = field(default_factory=dict)
    #: iteration -> task -> share of generated samples that failed the great-expectations suite
    malformed: dict[int, dict[str, float]] = field(default_factory=dict)
    #: iteration -> task -> share of the synthetic samples right against their source's gold answer
    synthetic_accuracy: dict[int, dict[str, float]] = field(default_factory=dict)
    #: params.yaml's ladder vocabulary size (to count a ladder model's parameters)
    vocab_size: int = 2048
    #: iteration -> task -> each test item's score, in test-set order (`load_items`; empty when the
    #: predictions are not in the local cache): what the report's paired bootstrap resamples
    items: dict[int, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def iterations(self) -> list[int]:
        return sorted(self.metrics)


@dataclass
class Collection:
    runs: list[Run]
    skipped: dict[str, str]  # row name -> why it was left out

    def skipped_summary(self) -> str:
        """One line: experiments still queued/running or failed by name, other rows counted by reason."""
        by_reason: dict[str, list[str]] = {}
        for name, why in sorted(self.skipped.items()):
            by_reason.setdefault(why, []).append(name)
        parts = []
        for why, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(names) if why in ("queued", "running", "failed") or len(names) <= 3 else f"{len(names)} rows"
            parts.append(f"{why}: {shown}")
        return "; ".join(parts)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def exp_show(repo: str = ".", all_commits: bool = True, revs: list[str] | None = None) -> list[dict[str, Any]]:
    """`dvc exp show --json` of `repo` (every commit's experiments with `all_commits`)."""
    cmd = ["dvc", "exp", "show", "--json"]
    if revs:
        for rev in revs:
            cmd += ["--rev", rev]
    elif all_commits:
        cmd.append("--all-commits")
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed in {repo}:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout or "[]")


def _rows(shown: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], str | None]]:
    """(name, data, state) of the workspace, every baseline commit and every experiment."""
    rows = []
    for commit in shown:
        label = commit.get("name") or (commit["rev"] if commit["rev"] == "workspace" else commit["rev"][:7])
        rows.append((label, commit.get("data") or {}, None))
        for exp in commit.get("experiments") or []:
            state = (exp.get("executor") or {}).get("state")
            for rev in exp.get("revs") or []:
                rows.append((exp.get("name") or rev.get("name") or rev["rev"][:7], rev.get("data") or {}, state))
    return rows


def _file_data(entry: Any) -> dict[str, Any] | None:
    if isinstance(entry, dict) and isinstance(entry.get("data"), dict):
        return entry["data"]
    return None


def to_run(name: str, data: dict[str, Any]) -> Run | str:
    """A `Run` from one exp-show row, or the reason it can't be one."""
    raw = _file_data((data.get("params") or {}).get("params.yaml"))
    if raw is None:
        return "no params.yaml"
    try:
        params = parse_params(raw)
    except ParamsError as err:
        return f"params no longer valid: {str(err).splitlines()[-1].strip()}"
    metrics: dict[int, dict[str, dict[str, float]]] = {}
    gate: dict[int, dict[str, bool]] = {}
    malformed: dict[int, dict[str, float]] = {}
    synthetic_accuracy: dict[int, dict[str, float]] = {}
    for path, entry in (data.get("metrics") or {}).items():
        match = _ITER_FILE.search(path)
        content = _file_data(entry)
        if not match or content is None:
            continue
        kind, iteration = match.group(1), int(match.group(2))
        if kind == "iterations":
            metrics[iteration] = {t: v for t, v in content.items() if isinstance(v, dict) and "score" in v}
        elif kind == "gate":
            gate[iteration] = {t: bool(v.get("flagged")) for t, v in content.items() if isinstance(v, dict)}
        else:
            malformed[iteration] = {
                t: float(v["malformed_rate"]) for t, v in content.items() if isinstance(v, dict) and "malformed_rate" in v
            }
            synthetic_accuracy[iteration] = {
                t: float(v["synthetic_accuracy"]) for t, v in content.items()
                if isinstance(v, dict) and v.get("synthetic_accuracy") is not None
            }
    if 0 not in metrics:
        return "no metrics (not run, or its outputs are not in the local cache: dvc pull / dvc exp pull)"
    flat = _flatten(params.model_dump(by_alias=True, exclude={"profiles"}))
    setting = {
        k: v
        for k, v in flat.items()
        if k not in AXES and not any(k == i or k.startswith(i + ".") for i in IGNORED)
    }
    return Run(
        name=name,
        rev=str(data.get("rev", "")),
        created=str(data.get("timestamp") or ""),
        ratio=params.ratio,
        seed=params.seed,
        model=params.model,
        mix_mode=params.mix.mode,
        setting=setting,
        tasks=list(params.tasks),
        metrics=dict(sorted(metrics.items())),
        gate=dict(sorted(gate.items())),
        malformed=dict(sorted(malformed.items())),
        synthetic_accuracy=dict(sorted(synthetic_accuracy.items())),
        vocab_size=params.tokenizer.vocab_size,
    )


def identity(run: Run) -> str:
    """What makes two runs the same experiment: every param that is not speed-only."""
    return json.dumps([run.ratio, run.seed, run.model, run.mix_mode, run.setting], sort_keys=True, default=str)


def collect(shown: list[dict[str, Any]]) -> Collection:
    """Finished runs of an `exp show --json` listing, one per distinct experiment (newest wins)."""
    runs: dict[str, Run] = {}
    skipped: dict[str, str] = {}
    for name, data, state in _rows(shown):
        if state in ("queued", "running", "failed"):
            skipped[name] = state
            continue
        run = to_run(name, data)
        if isinstance(run, str):
            skipped[name] = run
            continue
        _keep_newest(runs, run)
    return Collection(runs=_ordered(runs), skipped=skipped)


def _keep_newest(runs: dict[str, Run], run: Run) -> None:
    key = identity(run)
    if key not in runs or run.created > runs[key].created:
        runs[key] = run


def _ordered(runs: dict[str, Run]) -> list[Run]:
    return sorted(runs.values(), key=lambda r: (r.model, r.mix_mode, r.ratio, r.seed, r.name))


def merge(found: Collection, archived: list[Run]) -> Collection:
    """`found` (read through DVC) with archived runs (synthmix.report.archive) added: one run per
    distinct experiment, the newest of the two where both hold it."""
    runs: dict[str, Run] = {}
    for run in [*found.runs, *archived]:
        _keep_newest(runs, run)
    return Collection(runs=_ordered(runs), skipped=found.skipped)


def load_items(runs: list[Run], repo: str = ".") -> int:
    """Fill each run's per-item test scores from its data/predictions/iter<N>/<task>.jsonl, read
    through DVC at the run's revision (the local cache: `dvc exp pull` brings a teammate's); return
    how many runs have them. A run whose predictions cannot be read keeps `items` empty, and the
    report's intervals then resample its seeds only."""
    from dvc.api import DVCFileSystem

    loaded = 0
    for run in runs:
        try:
            fs = DVCFileSystem(repo, rev=None if run.rev in ("", "workspace") else run.rev)
        except Exception:  # noqa: BLE001 - an unreadable revision only loses its items
            continue
        items: dict[int, dict[str, list[float]]] = {}
        for it in run.iterations:
            for task in run.tasks:
                try:
                    text = fs.read_text(f"/data/predictions/iter{it}/{task}.jsonl")
                except Exception:  # noqa: BLE001 - not in the cache: this task's items stay unknown
                    continue
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
                items.setdefault(it, {})[task] = [float(r["score"] if "score" in r else r["correct"]) for r in rows]
        run.items = items
        loaded += bool(items)
    return loaded
