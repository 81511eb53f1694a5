"""The report's paired comparisons with ratio 0 and their bootstrap intervals.

A relative change is paired by seed (a seed fixes the data, the initialisation and iteration 1's
synthetic data); its interval comes from a paired bootstrap over test items and seeds
(`paired_draws`), from which the relative-change intervals and the safe ratio's interval are both
read. `judge` places an interval against a tolerated fall.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from synthmix.report.collect import Run


def seed_values(runs: list[Run], iteration: int, task: str, metric: str) -> dict[float, dict[int, float]]:
    """ratio -> seed -> value of `metric` for `task` at `iteration`."""
    out: dict[float, dict[int, float]] = defaultdict(dict)
    for r in runs:
        m = r.metrics.get(iteration, {}).get(task, {})
        if metric in m and m[metric] is not None:
            out[r.ratio][r.seed] = m[metric]
    return dict(sorted(out.items()))


def paired_relative(by_seed: dict[float, dict[int, float]], seeds: list[int] | None = None) -> dict[float, float]:
    """ratio -> relative change of the mean against ratio 0 over the seeds both were run with.

    Paired by seed: a seed fixes the data, the initialisation and iteration 1's synthetic data, so
    comparing the same seeds removes the seed-to-seed spread from the comparison (and a ratio
    run with fewer seeds is not compared with a differently-composed mean). `seeds` (possibly
    with repeats, for the bootstrap) restricts and weights the seeds used.
    """
    base = by_seed.get(0.0)
    if not base:
        return {}
    out = {}
    for ratio, vals in by_seed.items():
        common = [s for s in (seeds if seeds is not None else sorted(vals)) if s in vals and s in base]
        if not common:
            continue
        zero = float(np.mean([base[s] for s in common]))
        if zero != 0:
            out[ratio] = float(np.mean([vals[s] for s in common])) / zero - 1
    return out


def safe_ratio(rel: dict[float, float], tolerance: float) -> tuple[float, bool] | None:
    """Largest tested ratio up to which every tested ratio stays within `tolerance` of ratio 0.

    Returns (ratio, censored): censored when even the largest tested ratio was safe (the true
    threshold is at least that). None without ratio 0 and at least one ratio above it.
    """
    if 0.0 not in rel or len(rel) < 2:
        return None
    ratios = sorted(rel)
    safe = 0.0
    for r in ratios:
        if rel[r] < -tolerance:
            return safe, False
        safe = r
    return safe, True


def bootstrap_safe_ratio(
    runs: list[Run], iteration: int, task: str, tolerance: float, samples: int, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of the safe ratio over `paired_draws` (items and seeds resampled,
    the same draw for the ratios run with the same seeds, keeping the comparison paired); None when
    nothing can be resampled (one seed and no per-item scores)."""
    return safe_interval(paired_draws(runs, iteration, task, samples, seed)[0], tolerance)


def safe_interval(draws: list[dict[float, float]], tolerance: float) -> tuple[float, float] | None:
    """95% percentile interval of the safe ratio over bootstrap `draws` (None without any)."""
    safes = [got[0] for got in (safe_ratio(d, tolerance) for d in draws) if got is not None]
    if not safes:
        return None
    return interval95(safes)


def interval95(values: Any) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap values."""
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def paired_draws(
    runs: list[Run], iteration: int, task: str, samples: int, seed: int = 0
) -> tuple[list[dict[float, float]], str]:
    """Bootstrap draws of ratio -> relative score change against ratio 0 (the paired estimate of
    `paired_relative`), and what was resampled.

    A paired bootstrap: each draw resamples the seeds a ratio shares with ratio 0 (with
    replacement) and, within each drawn seed, its test items (with replacement), the same item
    indices for the ratio and ratio 0, since a seed's runs score the same test set. The variance
    of a comparison then comes from the items and the seeds it rests on, not from the spread of
    scores between them. Ratios run with the same seeds are drawn together (a balanced sweep is
    one such group); a ratio run with fewer seeds is resampled over its own, as its point estimate
    is computed over its own. Where a run's per-item scores are not available (predictions not in
    the local cache), the seeds alone are resampled ("seeds"); with one seed and items, the items
    alone ("items")."""
    return paired_mean_draws(runs, iteration, [task], samples, seed)


def paired_mean_draws(
    runs: list[Run], iteration: int, tasks: list[str], samples: int, seed: int = 0
) -> tuple[list[dict[float, float]], str]:
    """`paired_draws` of the mean over `tasks` of each task's relative change: each draw resamples
    the seeds once for every task (a seed's runs of all tasks share its data and its order), then
    each task's items within them. Ratios and seeds are those every task has; with one task this is
    `paired_draws` draw for draw."""
    per_task: dict[str, dict[float, dict[int, Run]]] = {}
    for task in tasks:
        by_ratio: dict[float, dict[int, Run]] = defaultdict(dict)
        for r in runs:
            if task in r.metrics.get(iteration, {}):
                by_ratio[r.ratio][r.seed] = r
        per_task[task] = by_ratio
    if not per_task:
        return [], "none"
    ratios = sorted(set.intersection(*(set(b) for b in per_task.values())))
    if 0.0 not in ratios or len(ratios) < 2:
        return [], "none"
    # the ratios that share their seeds with ratio 0, grouped by those seeds
    groups: dict[tuple[int, ...], list[float]] = defaultdict(list)
    for ratio in ratios[1:]:
        seeds = sorted(set.intersection(*(set(b[ratio]) & set(b[0.0]) for b in per_task.values())))
        if seeds:
            groups[tuple(seeds)].append(ratio)
    got = {task: {ratio: {sd: r.items.get(iteration, {}).get(task) for sd, r in by_ratio[ratio].items()}
                  for ratio in ratios} for task, by_ratio in per_task.items()}
    # every run of the groups has its items, and a seed's runs scored the same number of them
    with_items = bool(groups) and all(
        got[t][ratio][sd] is not None and len(got[t][ratio][sd]) == len(got[t][0.0][sd] or ())
        for shared, members in groups.items() for ratio in members for sd in shared for t in tasks)
    if not with_items:  # seeds alone: a group of one seed has nothing to resample
        groups = {shared: members for shared, members in groups.items() if len(shared) > 1}
    if not groups:
        return [], "none"
    arrays = {task: {ratio: {sd: np.asarray(v, dtype=float) for sd, v in r.items() if v is not None}
                     for ratio, r in a.items()} for task, a in got.items()} if with_items else {}
    rng = np.random.default_rng(seed)
    by_seed = None if with_items else {task: seed_values(runs, iteration, task, "score") for task in tasks}
    draws: list[dict[float, float]] = []
    for _ in range(samples):
        draw: dict[float, float] = {}
        for shared, members in groups.items():
            picked = list(rng.choice(shared, size=len(shared), replace=True)) if len(shared) > 1 else list(shared)
            group = [0.0, *members]
            if with_items:
                means: dict[str, dict[float, list[float]]] = {task: defaultdict(list) for task in tasks}
                for sd in picked:
                    for task in tasks:
                        n = len(arrays[task][0.0][sd])
                        idx = rng.integers(0, n, size=n)
                        for ratio in group:
                            means[task][ratio].append(float(arrays[task][ratio][sd][idx].mean()))
                zeros = {task: float(np.mean(means[task][0.0])) for task in tasks}
                if not all(zeros.values()):
                    continue
                draw.update({ratio: float(np.mean([float(np.mean(means[task][ratio])) / zeros[task] - 1
                                                   for task in tasks])) for ratio in group})
            else:
                rel = [paired_relative({r: by_seed[task][r] for r in group}, picked) for task in tasks]
                common = set.intersection(*(set(x) for x in rel))
                draw.update({ratio: float(np.mean([x[ratio] for x in rel])) for ratio in sorted(common)})
        if draw:
            draws.append(dict(sorted(draw.items())))
    most = max(len(shared) for shared in groups)
    how = ("items" if most == 1 else "items and seeds") if with_items else "seeds"
    return draws, how


def relative_intervals(
    runs: list[Run], iteration: int, task: str, samples: int, seed: int = 0
) -> tuple[dict[float, tuple[float, float]], str]:
    """ratio -> 95% percentile interval of the relative score change against ratio 0 over
    `paired_draws`, and what was resampled."""
    draws, how = paired_draws(runs, iteration, task, samples, seed)
    return intervals(draws), how


def intervals(draws: list[dict[float, float]]) -> dict[float, tuple[float, float]]:
    """ratio -> 95% percentile interval over bootstrap `draws`."""
    out = {}
    for r in sorted({r for d in draws for r in d}):
        vals = [d[r] for d in draws if r in d]
        out[r] = interval95(vals)
    return out


def judge(interval: tuple[float, float] | None, threshold: float) -> str:
    """Where an interval of relative change lies against a fall of `threshold`: "fell" (entirely
    below -threshold), "held" (entirely above it), "unresolved" (it straddles it), "unknown"."""
    if interval is None:
        return "unknown"
    lo, hi = interval
    return "fell" if hi < -threshold else "held" if lo >= -threshold else "unresolved"


def control_stability(runs: list[Run], task: str, first: int, last: int, samples: int,
                      seed: int = 0) -> dict[str, Any] | None:
    """Ratio 0 as the control: does it hold still over the iterations?

    `runs` are one group's runs; its ratio-0 ones (one per seed) are used. Compares `task`'s score at iteration
    `last` with iteration `first` (mean over seeds): the change, the test-set standard error of
    iteration `first`'s mean (from each run's `score_se`), whether the change is within two of
    them (issue 11's convergence criterion), and a 95% interval of the change from a bootstrap
    over seeds and, within a seed, its test items (the same items at both iterations: one test
    set). `spread` is the standard deviation of a seed's scores over every iteration, pooled over
    seeds: with `train.init: base` each ratio-0 iteration is phase 0 again on a new order, so it
    is the training order's noise, to read against the test-set SE. None without both iterations.
    """
    rows = [r for r in runs if r.ratio == 0.0 and task in r.metrics.get(first, {}) and task in r.metrics.get(last, {})]
    if not rows:
        return None
    rows.sort(key=lambda r: r.seed)
    a = [r.metrics[first][task]["score"] for r in rows]
    b = [r.metrics[last][task]["score"] for r in rows]
    change = float(np.mean(b) - np.mean(a))
    ses = [r.metrics[first][task].get("score_se") for r in rows]
    se = float(np.sqrt(sum(s * s for s in ses)) / len(rows)) if all(s is not None for s in ses) else None
    spreads = []
    for r in rows:
        vals = [r.metrics[it][task]["score"] for it in sorted(r.metrics) if task in r.metrics[it]]
        if len(vals) > 1:
            spreads.append(float(np.var(vals, ddof=1)))
    spread = float(np.sqrt(np.mean(spreads))) if spreads else None
    items = [(r.items.get(first, {}).get(task), r.items.get(last, {}).get(task)) for r in rows]
    with_items = all(x is not None and y is not None and len(x) == len(y) for x, y in items)
    ci, how = None, "none"
    if with_items or len(rows) > 1:
        rng = np.random.default_rng(seed)
        arrays = [(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in items] if with_items else []
        draws = []
        for _ in range(samples):
            picked = rng.integers(0, len(rows), size=len(rows)) if len(rows) > 1 else [0]
            if with_items:
                diffs = []
                for k in picked:
                    x, y = arrays[k]
                    idx = rng.integers(0, len(x), size=len(x))
                    diffs.append(float(y[idx].mean() - x[idx].mean()))
                draws.append(float(np.mean(diffs)))
            else:
                draws.append(float(np.mean([b[k] - a[k] for k in picked])))
        ci = interval95(draws)
        how = ("items" if len(rows) == 1 else "items and seeds") if with_items else "seeds"
    within = None if se is None else abs(change) <= 2 * se
    trend = "unknown" if ci is None else "down" if ci[1] < 0 else "up" if ci[0] > 0 else "none resolved"
    return {"first": first, "last": last, "seeds": [r.seed for r in rows], "per_seed": [y - x for x, y in zip(a, b)],
            "first_mean": float(np.mean(a)), "last_mean": float(np.mean(b)), "change": change, "first_se": se, "within_2se": within,
            "ci95": ci, "resampled": how, "trend": trend, "spread": spread,
            "spread_over_se": None if spread is None or not se else spread / float(np.mean(ses))}
