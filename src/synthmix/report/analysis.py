"""The paper's questions answered on a set of runs: degradation against ratio 0, safe thresholds,
model-size trends, ECE's lead over the score, task sensitivity, replace vs drop and accumulate.

Every comparison is against ratio 0 *at the same iteration, model and setting*: at small scale
more iterations also mean more training, so comparing with iteration 0 would credit extra epochs
to the synthetic data. Seeds are replicates: means over seeds, standard deviations as error bars;
the paired comparisons and their bootstrap intervals over test items and seeds are in
synthmix.report.intervals.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthmix.report.collect import Run
from synthmix.report.intervals import (  # noqa: F401 - part of this module's interface
    bootstrap_safe_ratio, control_stability, interval95, intervals, judge, paired_draws, paired_mean_draws,
    paired_relative, relative_intervals, safe_interval, safe_ratio, seed_values,
)

#: the paper's reported numbers (protocol.md), shown beside ours; its per-task sensitivity is each
#: family's `paper_sensitivity` (Settings.tasks)
PAPER = {
    "degradation_at_30": {"410M": -0.38, "12B": -0.16},
    "safe_ratio": "15-18% (small models) to 23-27% (large)",
    "calibration": "iteration 1: ECE +75% while accuracy -1.2%; accuracy fell clearly only at iteration 2",
}


@dataclass(frozen=True)
class TaskInfo:
    """What the report knows about a task: its family's display order, report group and the paper's
    sensitivity for it (`TaskFamily.order`, `.group`, `.paper_sensitivity`)."""

    order: int = 1000
    group: str | None = None
    paper_sensitivity: float | None = None


def task_info(families: Any = ()) -> dict[str, TaskInfo]:
    """TaskInfo of every built-in family and of `families` (configured TaskFamily objects, e.g. the
    YAML tasks of params.yaml): the report reads it from the families, never from a list of names."""
    from synthmix.tasks.base import REGISTRY

    known = {name: TaskInfo(cls.order, cls.group, cls.paper_sensitivity) for name, cls in REGISTRY.items()}
    known.update({f.name: TaskInfo(f.order, f.group, f.paper_sensitivity) for f in families})
    return known


@dataclass(frozen=True)
class Group:
    """Runs that differ only in ratio and seed: one degradation curve per task and iteration."""

    model: str
    mix_mode: str
    setting: str  # a short label of what else differs between groups ("" when nothing does)

    @property
    def label(self) -> str:
        parts = [self.model] + ([self.mix_mode] if self.mix_mode != "replace" else []) + ([self.setting] if self.setting else [])
        return " / ".join(parts)


def setting_labels(runs: list[Run]) -> dict[int, str]:
    """A short label per run of the non-axis params that vary across runs (empty when none vary)."""
    keys = sorted({k for r in runs for k in r.setting})
    varying = [k for k in keys if len({repr(r.setting.get(k)) for r in runs}) > 1]
    return {id(r): ", ".join(f"{k}={r.setting.get(k)}" for k in varying) for r in runs}


def group_runs(runs: list[Run]) -> dict[Group, list[Run]]:
    labels = setting_labels(runs)
    groups: dict[Group, list[Run]] = defaultdict(list)
    for run in runs:
        groups[Group(run.model, run.mix_mode, labels[id(run)])].append(run)
    return dict(sorted(groups.items(), key=lambda kv: (parameter_count(kv[1][0]), kv[0].mix_mode, kv[0].setting)))


def parameter_count(run: Run) -> int:
    """Parameters of a run's model: ladder sizes built from their config (on the meta device: no
    weights allocated), hub ids read from their name ("pythia-1.4b")."""
    from synthmix import modeling

    if run.model in modeling.LADDER_SHAPES:
        import torch
        from transformers import AutoModelForCausalLM

        config = modeling.ladder_config(run.model, run.vocab_size, eos_id=0, pad_id=1)
        with torch.device("meta"):
            return modeling.count_parameters(AutoModelForCausalLM.from_config(config))
    match = re.search(r"(\d+(?:\.\d+)?)([mMbB])\b", run.model.split("/")[-1])
    if match:
        return int(float(match.group(1)) * (1e6 if match.group(2).lower() == "m" else 1e9))
    return 0


def _by(runs: list[Run]) -> dict[float, list[Run]]:
    out: dict[float, list[Run]] = defaultdict(list)
    for r in runs:
        out[r.ratio].append(r)
    return dict(sorted(out.items()))


def common_iterations(runs: list[Run]) -> list[int]:
    its = set(runs[0].metrics)
    for r in runs[1:]:
        its &= set(r.metrics)
    return sorted(its)


def stat(values: list[float]) -> dict[str, float]:
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if not len(arr):
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    sd = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "std": sd, "n": int(len(arr)),
            "se": sd / math.sqrt(len(arr)) if len(arr) > 1 else float("nan")}


def values(runs: list[Run], iteration: int, task: str, metric: str) -> list[float]:
    return [r.metrics[iteration][task][metric] for r in runs if task in r.metrics.get(iteration, {}) and metric in r.metrics[iteration][task]]


def curves(group_runs_: list[Run], tasks: list[str], metrics: tuple[str, ...]) -> dict[str, Any]:
    """metric -> task -> iteration -> ratio -> {mean, std, n, se} over seeds.

    `se` is the standard error of the mean: over seeds (std / sqrt(n)) with two or more, else the
    one run's standard error over test items (`score_se`, evaluate's), for the score."""
    by_ratio = _by(group_runs_)
    its = common_iterations(group_runs_)
    out: dict[str, Any] = {}
    for m in metrics:
        out[m] = {}
        for t in tasks:
            out[m][t] = {}
            for it in its:
                out[m][t][it] = {}
                for ratio, rs in by_ratio.items():
                    st = stat(values(rs, it, t, m))
                    if st["n"] == 1:
                        item_se = values(rs, it, t, f"{m}_se")
                        st["se"] = item_se[0] if item_se else float("nan")
                    out[m][t][it][ratio] = st
    return out


def interpolate(rel: dict[float, float], at: float) -> float | None:
    """Relative change at ratio `at`, linear between the tested ratios around it (None outside)."""
    ratios = sorted(rel)
    if not ratios or at < ratios[0] or at > ratios[-1]:
        return None
    return float(np.interp(at, ratios, [rel[r] for r in ratios]))


def fit_log_size(points: list[tuple[int, float]]) -> dict[str, float] | None:
    """Least-squares line safe_ratio = a + b * log10(parameters) (None with fewer than 2 sizes)."""
    sizes = sorted({n for n, _ in points})
    if len(sizes) < 2 or any(n <= 0 for n in sizes):
        return None
    x = np.log10([n for n, _ in points])
    y = np.asarray([s for _, s in points], dtype=float)
    b, a = np.polyfit(x, y, 1)
    b = 0.0 if abs(b) < 1e-12 else b  # a flat fit's rounding residue, not "-0.000" per decade
    pred = a + b * x
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return {"intercept": float(a), "slope_per_decade": float(b), "r2": r2, "points": len(points), "sizes": len(sizes)}


def onset(series: dict[int, float], threshold: float, direction: int) -> int | None:
    """First iteration >= 1 where `series` (relative change vs ratio 0) crosses `threshold` in `direction`."""
    for it in sorted(series):
        if it >= 1 and direction * series[it] > threshold:
            return it
    return None


@dataclass
class Settings:
    tolerance: float = 0.03
    sensitivity_ratio: float = 0.5
    size_ratio: float = 0.3  # finding 2 compares model sizes' relative change here (the paper's 30%)
    bootstrap_samples: int = 1000
    ece_relative_rise: float = 0.5  # the paper's gate: ECE +50% is a warning
    #: per task name, what its family says (task_info()); a task it lacks sorts last, in no group
    tasks: dict[str, TaskInfo] = field(default_factory=task_info)

    def info(self, task: str) -> TaskInfo:
        return self.tasks.get(task, TaskInfo())


def analyse(runs: list[Run], settings: Settings) -> dict[str, Any]:
    """Every number the report shows, as one JSON-serialisable mapping."""
    groups = group_runs(runs)
    tasks = sorted({t for r in runs for t in r.tasks}, key=lambda t: (settings.info(t).order, t))
    shown_settings = {k: v for k, v in settings.__dict__.items() if k != "tasks"}
    paper = {**PAPER, "sensitivity": {t: settings.info(t).paper_sensitivity for t in tasks
                                      if settings.info(t).paper_sensitivity is not None}}
    out: dict[str, Any] = {"settings": shown_settings, "tasks": tasks, "groups": [], "paper": paper,
                           "task_groups": {t: settings.info(t).group for t in tasks}}
    for group, members in groups.items():
        its = common_iterations(members)
        final = its[-1]
        cur = curves(members, tasks, ("score", "ece", "self_bleu", "distinct_2"))
        g: dict[str, Any] = {
            "label": group.label, "model": group.model, "mix_mode": group.mix_mode, "setting": group.setting,
            "parameters": parameter_count(members[0]), "iterations": its, "final_iteration": final,
            "ratios": sorted({r.ratio for r in members}), "seeds": sorted({r.seed for r in members}),
            "runs": [r.name for r in members], "curves": cur, "relative": {}, "safe": {}, "lead": {},
            "relative_ci": {}, "resampled": {}, "resampled_label": "",
            "paper_setting": all(in_paper_setting(r.setting) for r in members),
        }
        for metric in ("score", "ece"):
            g["relative"][metric] = {t: {it: paired_relative(seed_values(members, it, t, metric)) for it in its}
                                     for t in tasks}
        for t in tasks:
            g["relative_ci"][t], g["safe"][t] = {}, {}
            for it in its:  # one set of paired draws gives both intervals
                draws, g["resampled"][t] = paired_draws(members, it, t, settings.bootstrap_samples)
                g["relative_ci"][t][it] = intervals(draws)
                got = safe_ratio(g["relative"]["score"][t][it], settings.tolerance)
                ci = safe_interval(draws, settings.tolerance) if got else None
                g["safe"][t][it] = None if got is None else {"ratio": got[0], "censored": got[1], "ci95": ci}
            # ECE's lead over the score: first iteration each moved past its threshold, per ratio > 0
            g["lead"][t] = {}
            for ratio in g["ratios"]:
                if ratio == 0:
                    continue
                s = {it: g["relative"]["score"][t][it].get(ratio) for it in its}
                e = {it: g["relative"]["ece"][t][it].get(ratio) for it in its}
                if any(v is None for v in (*s.values(), *e.values())):
                    continue
                score_fall = onset(s, settings.tolerance, -1)
                ece_rise = onset(e, settings.ece_relative_rise, +1)
                g["lead"][t][ratio] = {
                    "ece_rise_iteration": ece_rise, "score_fall_iteration": score_fall,
                    "lead": None if score_fall is None or ece_rise is None else score_fall - ece_rise,
                }
        g["resampled_label"] = ", ".join(sorted(set(g["resampled"].values()))) or "none"
        # ratio 0 as the control: its last iteration against iteration 1 (issue 11's convergence)
        g["control"] = {t: control_stability(members, t, 1, final, settings.bootstrap_samples)
                        for t in tasks} if final > 1 else {}
        # synthetic-label accuracy: task -> iteration -> ratio -> {mean, std, n} over seeds
        g["synthetic_accuracy"] = {
            t: {it: {ratio: stat([r.synthetic_accuracy.get(it, {}).get(t) for r in rs
                                  if r.synthetic_accuracy.get(it, {}).get(t) is not None])
                     for ratio, rs in _by(members).items()} for it in its if it >= 1} for t in tasks}
        out["groups"].append(g)
    out["size_fit"] = size_fits(out["groups"], tasks, settings.tolerance)
    out["size_steps"] = size_steps(groups, out["groups"], tasks, settings.size_ratio, settings.bootstrap_samples)
    out["mix_modes"] = mix_mode_comparison(out["groups"], tasks)
    out["quality_control"] = filter_comparison(groups, out["groups"], tasks)
    out["gate"] = gate_table(runs)
    out["findings"] = findings(out, settings)
    return out


def mode_key(mode: str, setting: str) -> str:
    """How size_fits and size_steps key a mix mode and setting: "replace", "replace / dedup=0.5"."""
    return " / ".join([mode] + ([setting] if setting else []))


def size_fits(groups: list[dict[str, Any]], tasks: list[str], tolerance: float) -> dict[str, Any]:
    """Safe ratio (final iteration) against log10(parameters), per task and pooled, for each mix mode
    and setting run at two or more sizes (a verified tiny beside an unfiltered small is no size
    trend). Keyed by the mix mode, with the setting after it where settings vary.

    Each size's safe ratio is read on the ratios every size ran (`ratios`): a size run at 0 and 0.3
    can only be safe to 0 or 0.3, so one run at 0-0.5 in steps of 0.1 would otherwise be read on a
    finer grid, and the fit would compare grids, not sizes."""
    fits: dict[str, Any] = {}
    for mode, setting in sorted({(g["mix_mode"], g["setting"]) for g in groups}):
        members = [g for g in groups if g["mix_mode"] == mode and g["setting"] == setting]
        if len({g["parameters"] for g in members}) < 2:
            continue
        common = sorted(set.intersection(*(set(g["ratios"]) for g in members)))
        if 0.0 not in common or len(common) < 2:
            continue
        per_task, pooled = {}, []
        for t in tasks:
            pts = []
            for g in members:
                rel = g["relative"]["score"][t].get(g["final_iteration"], {})
                got = safe_ratio({r: rel[r] for r in common if r in rel}, tolerance)
                if got is not None:
                    pts.append((g["parameters"], got[0]))
            pooled += pts
            per_task[t] = {"points": pts, "fit": fit_log_size(pts)}
        key = mode_key(mode, setting)
        fits[key] = {"mix_mode": mode, "setting": setting, "paper_setting": all(g["paper_setting"] for g in members),
                     "ratios": common, "per_task": per_task, "pooled": fit_log_size(pooled)}
    return fits


def size_steps(groups: dict[Group, list[Run]], analysed: list[dict[str, Any]], tasks: list[str], at: float,
               samples: int) -> dict[str, list[dict[str, Any]]]:
    """Each model size against the next smaller one, for each mix mode and setting run at two or more
    sizes: the task mean of the relative score change against ratio 0 at ratio `at` (final
    iteration; interpolated between tested ratios), each size's with its 95% interval, and the
    difference (larger minus smaller: > 0, the larger model lost less) with its interval. The two
    sizes' bootstrap draws are independent (different runs); each is `paired_mean_draws`."""
    by_label = {g["label"]: g for g in analysed}
    keyed: dict[tuple[str, str], list[tuple[dict[str, Any], list[Run]]]] = defaultdict(list)
    for group, members in groups.items():
        g = by_label[group.label]
        keyed[(g["mix_mode"], g["setting"])].append((g, members))
    out: dict[str, list[dict[str, Any]]] = {}
    for (mode, setting), sized in sorted(keyed.items()):
        if len({g["parameters"] for g, _ in sized}) < 2:
            continue
        shared = [t for t in tasks if all(g["relative"]["score"][t][g["final_iteration"]] for g, _ in sized)]
        points = []
        for g, members in sorted(sized, key=lambda x: x[0]["parameters"]):
            draws, _ = paired_mean_draws(members, g["final_iteration"], shared, samples)
            at_ratio = [v for v in (interpolate(d, at) for d in draws) if v is not None]
            point = interpolate(_mean_over_tasks(g, shared, "score"), at)
            if point is not None and at_ratio:
                points.append((g, point, np.asarray(at_ratio)))
        members_of = {g["label"]: members for g, members in sized}
        steps = []
        for (a, pa, da), (b, pb, db) in zip(points, points[1:]):
            n = min(len(da), len(db))
            diff = db[:n] - da[:n]
            steps.append({
                "smaller": a["label"], "larger": b["label"], "parameters": [a["parameters"], b["parameters"]],
                "change": [pa, pb], "change_ci": [interval95(da), interval95(db)],
                "difference": pb - pa, "difference_ci": interval95(diff), "tasks": shared,
                "competence": competence_step(members_of[a["label"]], members_of[b["label"]], shared),
            })
        if steps:
            out[mode_key(mode, setting)] = steps
    return out


def competence(runs: list[Run], tasks: list[str]) -> dict[str, float] | None:
    """A size's iteration-0 score, the task mean over `tasks`, mean over seeds, with its standard error.

    Iteration 0 (phase 0: the base fine-tuned on external data only) depends on the seed, not on
    the ratio, so each seed counts once (its ratio-0 run where there is one). The standard error
    adds the seeds' spread (sd / sqrt(seeds)) and the test items' (each run's `score_se`, the task
    mean's: sqrt(sum of squares) / tasks): the seeds share one test set, so averaging them does not
    shrink the items' part."""
    per_seed: dict[int, Run] = {}
    for r in sorted(runs, key=lambda r: r.ratio):
        if all(t in r.metrics.get(0, {}) and "score" in r.metrics[0][t] for t in tasks):
            per_seed.setdefault(r.seed, r)
    if not per_seed or not tasks:
        return None
    means = [float(np.mean([r.metrics[0][t]["score"] for t in tasks])) for r in per_seed.values()]
    item_ses = [math.sqrt(sum(r.metrics[0][t].get("score_se", 0.0) ** 2 for t in tasks)) / len(tasks)
                for r in per_seed.values()]
    n = len(means)
    seeds_var = float(np.var(means, ddof=1)) / n if n > 1 else 0.0
    return {"score": float(np.mean(means)), "se": math.sqrt(seeds_var + float(np.mean(item_ses)) ** 2), "seeds": n}


def competence_step(smaller: list[Run], larger: list[Run], tasks: list[str]) -> dict[str, Any] | None:
    """Is the larger size the more capable model? Its iteration-0 task mean minus the smaller's, with a
    normal 95% interval. Finding 2 (the paper: larger, more capable models are more robust) is only
    testable where this interval lies above zero: sizes that differ in parameters but not in what
    they can do test nothing about capability."""
    a, b = competence(smaller, tasks), competence(larger, tasks)
    if a is None or b is None:
        return None
    d, se = b["score"] - a["score"], math.hypot(a["se"], b["se"])
    return {"smaller": a, "larger": b, "difference": d, "difference_ci": (d - 1.96 * se, d + 1.96 * se)}


#: the params of quality control (synthmix.quality) the comparison sets side by side
FILTER_KEY = "validate.filter"


#: the quality-control dial: the filter, and the redraws (rejection sampling) that keep the ratio under it
ATTEMPTS_KEY = "generate.max_attempts"
#: near-duplicate removal, the third dial (0 = off, the paper's)
DEDUP_KEY = "validate.dedup"


def filter_comparison(groups: dict[Group, list[Run]], analysed: list[dict[str, Any]], tasks: list[str]) -> list[dict[str, Any]]:
    """The paper's open question 4: the safe ratio with and without verification filtering, per task
    and model size (final iteration, each with its bootstrap interval), wherever the same setting was
    run unfiltered (`validate.filter: none`, one draw per prompt: the paper's) and `verified` (with any
    `generate.max_attempts`: STaR redraws samples that fail, so the mix still reaches `ratio`), and
    nothing else differs. One row per task and verified variant."""
    by_label = {g["label"]: g for g in analysed}
    keyed: dict[tuple, dict[tuple[str, int], dict[str, Any]]] = {}
    for group, members in groups.items():
        setting = members[0].setting
        rest = tuple(sorted((k, repr(v)) for k, v in setting.items() if k not in (FILTER_KEY, ATTEMPTS_KEY)))
        dial = (str(setting.get(FILTER_KEY, "none")), int(setting.get(ATTEMPTS_KEY, 1)))
        keyed.setdefault((group.model, group.mix_mode, rest), {})[dial] = by_label[group.label]
    rows = []
    for (model, mix_mode, _), by_dial in keyed.items():
        plain = by_dial.get(("none", 1))
        if plain is None:
            continue
        for (kind, attempts), verified in sorted(by_dial.items()):
            if kind != "verified":
                continue
            for t in tasks:
                a = plain["safe"][t].get(plain["final_iteration"])
                b = verified["safe"][t].get(verified["final_iteration"])
                rows.append({
                    "model": model, "mix_mode": mix_mode, "task": t, "parameters": plain["parameters"],
                    "max_attempts": attempts, "none": a, "verified": b, "groups": [plain["label"], verified["label"]],
                    "shift": None if a is None or b is None else b["ratio"] - a["ratio"],
                })
    return rows


def mix_mode_comparison(groups: list[dict[str, Any]], tasks: list[str]) -> list[dict[str, Any]]:
    """Replace vs its control (drop: the same examples removed, nothing added) and vs accumulate:
    relative score change against ratio 0 at the final iteration, for each mode run beside replace
    (same model and setting). A mode not run is None in its column."""
    rows = []
    for g in groups:
        if g["mix_mode"] != "replace":
            continue
        others = {o["mix_mode"]: o for o in groups
                  if o["mix_mode"] in ("drop", "accumulate") and o["model"] == g["model"] and o["setting"] == g["setting"]}
        if not others:
            continue
        for t in tasks:
            ratios = set(g["ratios"]).intersection(*(o["ratios"] for o in others.values()))
            for ratio in sorted(r for r in ratios if r != 0):
                row = {"model": g["model"], "task": t, "ratio": ratio,
                       "replace": g["relative"]["score"][t][g["final_iteration"]].get(ratio)}
                for mode in ("drop", "accumulate"):
                    o = others.get(mode)
                    row[mode] = None if o is None else o["relative"]["score"][t][o["final_iteration"]].get(ratio)
                rows.append(row)
    return rows


def gate_table(runs: list[Run]) -> dict[str, Any]:
    """The gate's own flags (its rule: ECE vs iteration 0) across every run."""
    rows = []
    for r in runs:
        flagged = {it: sorted(t for t, f in tasks.items() if f) for it, tasks in r.gate.items() if it >= 1}
        first = min((it for it, ts in flagged.items() if ts), default=None)
        rows.append({"run": r.name, "model": r.model, "ratio": r.ratio, "seed": r.seed, "mix_mode": r.mix_mode,
                     "flagged": flagged, "first_flag": first})
    return {"rows": rows, "runs_flagged": sum(1 for row in rows if row["first_flag"] is not None), "runs": len(rows)}


def _verdict(status: str, measured: str, settle: str = "") -> dict[str, str]:
    return {"verdict": status, "measured": measured, "to_settle": settle}


def findings(result: dict[str, Any], s: Settings) -> list[dict[str, str]]:
    """The four findings of the paper, each: what it reports, what these runs show, a verdict."""
    groups = _paper_groups(result)
    tasks = result["tasks"]
    pct = lambda x: "n/a" if x is None else f"{100 * x:+.1f}%"  # noqa: E731
    rows = []

    # 1. Within ~3% up to 20% synthetic, faster degradation beyond ~30%: judged on the 95% intervals
    #    of the task-mean relative change (paired bootstrap over items and seeds)
    parts, states, widths = [], [], []
    for g in groups:
        rel = _mean_over_tasks(g, tasks, "score")
        ci = _mean_interval_over_tasks(g, tasks)
        low = [r for r in rel if 0 < r <= 0.2 + 1e-9]
        high = [r for r in rel if r >= 0.3 - 1e-9]
        if not low or not high:
            states.append("insufficient")
            continue
        worst_low = min(low, key=lambda r: rel[r])
        r_low, r_high = max(low), max(high)
        slope_low = (rel[r_low] - rel[0.0]) / r_low
        slope_high = (rel[r_high] - rel[r_low]) / (r_high - r_low)
        low_states = [judge(ci.get(r), s.tolerance) for r in low]
        high_state = judge(ci.get(r_high), s.tolerance)
        if "fell" in low_states or high_state == "held" or (high_state == "fell" and slope_high >= slope_low):
            states.append("does not hold")
        elif all(x == "held" for x in low_states) and high_state == "fell":
            states.append("holds")
        else:
            states.append("inconclusive")
            widths += [(hi - lo) / 2 for r, (lo, hi) in ci.items() if r in low + high]
        parts.append(f"{g['label']} ({states[-1]}): {pct(rel[worst_low])} {_ci_text(ci.get(worst_low))} at {worst_low:.0%}, "
                     f"{pct(rel[r_high])} {_ci_text(ci.get(r_high))} at {r_high:.0%} "
                     f"(slope {slope_low:+.2f} then {slope_high:+.2f} per unit ratio; intervals over {g['resampled_label']})")
    settle = "run ratios 0, 0.1, 0.2, 0.3, 0.4, 0.5 (dvc exp run --queue -S ratio=0,0.1,0.2,0.3,0.4,0.5)"
    if widths:
        settle = (f"the intervals are ±{100 * float(np.mean(widths)):.1f}% wide: effects smaller than that are not "
                  "resolved here; more seeds (-S seed=0,1,2,3,4) or test items (prepare.test_size) narrow them")
    rows.append({"finding": "1. Performance stays within ~3% of ratio 0 up to ~20% synthetic; degradation accelerates beyond ~30%",
                 "paper": "within ~3% up to 20%; accelerating loss beyond 30%",
                 **_combine(states, "; ".join(parts) or "no group has ratios both in (0, 0.2] and >= 0.3", settle)})

    # 2. Larger models are more robust; safe ratio grows with log(size). Judged on the interval of
    #    each size step's difference in relative change at 30% (size_steps), in the paper
    #    setting's groups with the most sizes
    sizes = lambda x: len({g["parameters"] for g in groups if g["setting"] == x})  # noqa: E731
    setting = max(sorted({g["setting"] for g in groups}), key=sizes, default="")
    steps = result.get("size_steps", {}).get(mode_key("replace", setting), [])
    fitted = next((f for f in result["size_fit"].values()
                   if f["mix_mode"] == "replace" and f["setting"] == setting), None)
    fit = fitted["pooled"] if fitted else None
    at = s.size_ratio
    if not steps:
        verdict = _verdict("not enough experiments", f"fewer than two model sizes with ratios spanning 0-{at:g}",
                           "run the same ratios at a second size (-S model=small / medium)")
    else:
        cis = [st["difference_ci"] for st in steps]
        measured = "; ".join(
            f"{st['smaller']} {pct(st['change'][0])} {_ci_text(st['change_ci'][0])}, {st['larger']} "
            f"{pct(st['change'][1])} {_ci_text(st['change_ci'][1])} at {at:.0%} (task mean, final iteration): "
            f"larger minus smaller {pct(st['difference'])} {_ci_text(st['difference_ci'])}" for st in steps)
        if fit:
            grid = ", ".join(f"{r:g}" for r in fitted["ratios"])
            measured += (f"; safe ratio = {fit['intercept']:.3f} {fit['slope_per_decade']:+.3f} x log10(params) "
                         f"({fit['points']} points, on the ratios every size ran: {grid})")
        # the premise: the larger size is the more capable model at iteration 0, beyond its interval
        unresolved = [st for st in steps if st.get("competence") and st["competence"]["difference_ci"][0] <= 0]
        if unresolved:
            why = "; ".join(
                f"{st['larger']} scores {st['competence']['larger']['score']:.3f} at iteration 0 against "
                f"{st['smaller']}'s {st['competence']['smaller']['score']:.3f} (task mean; difference "
                f"{st['competence']['difference']:+.3f} [{st['competence']['difference_ci'][0]:+.3f}, "
                f"{st['competence']['difference_ci'][1]:+.3f}])" for st in unresolved)
            verdict = _verdict(
                "not testable here",
                f"the larger size is not the more capable model: {why}. The paper's sizes differ in capability; "
                f"these differ in parameters only, so their robustness says nothing about capability. What the "
                f"runs measured: {measured}",
                "a size step whose larger model scores higher at iteration 0, beyond its interval (a corpus with "
                "more to learn than the smaller size can hold, or fine-tuning params tuned per size)")
        elif any(hi < 0 for _, hi in cis):
            verdict = _verdict("does not hold", measured + " (a larger model lost more, beyond its interval)")
        elif all(lo > 0 for lo, _ in cis) and any(st["difference"] >= s.tolerance for st in steps):
            verdict = _verdict("holds", measured)
        elif all(-s.tolerance < lo and hi < s.tolerance for lo, hi in cis):
            verdict = _verdict("does not hold", measured + f" (no size step differs by {s.tolerance:.0%} or more: "
                                                           "the intervals rule it out)")
        else:
            half = max((hi - lo) / 2 for lo, hi in cis)
            verdict = _verdict("inconclusive", measured,
                               f"the intervals are ±{100 * half:.1f}% wide: a size difference smaller than that is "
                               "not resolved here; more seeds (-S seed=0,1,2,3,4), or sizes further apart "
                               "(-S model=tiny,medium)")
    rows.append({"finding": "2. Larger models are more robust; the safe ratio grows with log(model size)",
                 "paper": "relative drop at 30%: -38% (410M) to -16% (12B); safe ratio 15-18% small, 23-27% large",
                 **verdict})

    # 3. Calibration degrades first (ECE leads the score by 1-2 iterations).
    leads = [v["lead"] for g in groups for t in tasks for v in g["lead"].get(t, {}).values()]
    falls = [v for g in groups for t in tasks for v in g["lead"].get(t, {}).values() if v["score_fall_iteration"] is not None]
    rises = [v for g in groups for t in tasks for v in g["lead"].get(t, {}).values() if v["ece_rise_iteration"] is not None]
    max_its = max((len(g["iterations"]) - 1 for g in groups), default=0)
    measured = (f"{len(rises)} of {len(leads)} (model, task, ratio) curves had ECE rise >{s.ece_relative_rise:.0%} over ratio 0; "
                f"{len(falls)} had the score fall >{s.tolerance:.0%}")
    led = [v["lead"] for v in falls if v["lead"] is not None]
    if led:
        measured += f"; where both happened, ECE led by {np.mean(led):+.1f} iterations on average ({sum(1 for x in led if x > 0)} of {len(led)} led)"
    if max_its < 2 or not leads:
        verdict = _verdict("not enough experiments", measured, "run at least 2 iterations at a ratio > 0 beside ratio 0")
    elif not falls:
        verdict = _verdict("not enough experiments", measured + "; the score never fell, so there is nothing for ECE to lead",
                           "more iterations or higher ratios, until the score falls")
    elif all(v["score_fall_iteration"] == 1 for v in falls):
        verdict = _verdict("not testable here", measured + "; every score fall came at iteration 1, the first iteration "
                           "with synthetic data, so no ECE rise could come before it",
                           "lower ratios, where the score falls later (or a gentler regime: validate.filter, mix.mode accumulate)")
    else:
        share_led = sum(1 for v in falls if v["ece_rise_iteration"] is not None and v["ece_rise_iteration"] < v["score_fall_iteration"]) / len(falls)
        verdict = _verdict("holds" if share_led > 0.5 else "does not hold", measured + f"; ECE rose first in {share_led:.0%} of score falls")
    rows.append({"finding": "3. Calibration degrades first: ECE rises 1-2 iterations before the score falls",
                 "paper": PAPER["calibration"], **verdict})

    # 4. Reasoning degrades faster than grounded tasks.
    sens = sensitivity(result, s.sensitivity_ratio)
    groups = result.get("task_groups", {})
    reasoning = [t for t in result["tasks"] if groups.get(t) == "reasoning" and sens.get(t) is not None]
    grounded = [t for t in result["tasks"] if groups.get(t) == "grounded" and sens.get(t) is not None]
    measured = ", ".join(f"{t} {pct(sens[t])}" for t in sorted(sens, key=lambda t: sens[t] if sens[t] is not None else 0) if sens[t] is not None)
    names = lambda group: ", ".join(t for t in result["tasks"] if groups.get(t) == group) or "none"  # noqa: E731
    if not reasoning or not grounded:
        verdict = _verdict("not enough experiments", measured or f"no task's score at ratio {s.sensitivity_ratio} (and 0)",
                           f"run at least one reasoning task ({names('reasoning')}) and one grounded task "
                           f"({names('grounded')}) at ratios 0 and {s.sensitivity_ratio}")
    else:
        ok = max(sens[t] for t in reasoning) < min(sens[t] for t in grounded)
        verdict = _verdict("holds" if ok else "does not hold", measured + f" (relative change at ratio {s.sensitivity_ratio:.0%}, final iteration, mean over model sizes)")
    paper = ", ".join(f"{t.capitalize()} {pct(v)}" for t, v in result["paper"]["sensitivity"].items())
    rows.append({"finding": f"4. Reasoning ({', '.join(reasoning) or names('reasoning')}) degrades faster than grounded "
                            f"tasks ({', '.join(grounded) or names('grounded')})",
                 "paper": paper or "Math -20%, Code -22%, Factual -13%, Reading -5%", **verdict})
    return rows


def in_paper_setting(setting: dict[str, Any]) -> bool:
    """Whether a run's quality control is the paper's: no filter, one draw per prompt, no dedup."""
    return (str(setting.get(FILTER_KEY, "none")) == "none" and int(setting.get(ATTEMPTS_KEY, 1)) == 1
            and not float(setting.get(DEDUP_KEY, 0) or 0))


def _paper_groups(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups the paper's findings are judged on: replace mode (the paper's) in the paper's
    setting (no quality control; a verified group answers another question, filter_comparison's).
    Failing those, the replace groups, or every group."""
    replace = [g for g in result["groups"] if g["mix_mode"] == "replace"]
    return [g for g in replace if g.get("paper_setting", True)] or replace or result["groups"]


def _combine(states: list[str], measured: str, settle: str) -> dict[str, str]:
    decided = [x for x in states if x != "insufficient"]
    if not decided:
        return _verdict("not enough experiments", measured, settle)
    if "does not hold" in decided:
        return _verdict("does not hold", measured)
    if all(x == "holds" for x in decided):
        return _verdict("holds", measured)
    return _verdict("inconclusive", measured, settle)


def _ci_text(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{100 * ci[0]:+.1f}%, {100 * ci[1]:+.1f}%]"


def _mean_interval_over_tasks(g: dict[str, Any], tasks: list[str]) -> dict[float, tuple[float, float]]:
    """ratio -> the task mean of each task's 95% interval bounds at the final iteration (a
    conservative stand-in for the interval of the task mean: averaging bounds does not shrink them)."""
    final = g["final_iteration"]
    per_task = [g["relative_ci"][t][final] for t in tasks if g["relative_ci"].get(t, {}).get(final)]
    if not per_task:
        return {}
    ratios = set.intersection(*(set(p) for p in per_task))
    return {r: (float(np.mean([p[r][0] for p in per_task])), float(np.mean([p[r][1] for p in per_task])))
            for r in sorted(ratios)}


def _mean_over_tasks(g: dict[str, Any], tasks: list[str], metric: str) -> dict[float, float]:
    """ratio -> relative change (vs ratio 0) at the final iteration, averaged over tasks."""
    final = g["final_iteration"]
    per_task = [g["relative"][metric][t][final] for t in tasks if g["relative"][metric][t][final]]
    if not per_task:
        return {}
    ratios = set.intersection(*(set(p) for p in per_task))
    return {r: float(np.mean([p[r] for p in per_task])) for r in sorted(ratios)}


def sensitivity(result: dict[str, Any], at: float) -> dict[str, float | None]:
    """task -> relative score change at ratio `at` (final iteration), averaged over the groups of
    the paper's setting (replace mode, no quality control): one per model size."""
    groups = _paper_groups(result)
    out: dict[str, float | None] = {}
    for t in result["tasks"]:
        got = [interpolate(g["relative"]["score"][t][g["final_iteration"]], at) for g in groups]
        got = [x for x in got if x is not None]
        out[t] = float(np.mean(got)) if got else None
    return out
