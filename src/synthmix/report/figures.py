"""The report's figures (matplotlib, PNG): what people would rather look at than read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: reports are written on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from synthmix.report.analysis import sensitivity  # noqa: E402

METRIC_LABEL = {"score": "task score", "ece": "ECE (10 bins)", "self_bleu": "Self-BLEU", "distinct_2": "Distinct-2"}


def _grid(n: int, title: str) -> tuple[plt.Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.1), squeeze=False, constrained_layout=True)
    fig.suptitle(title)
    return fig, list(axes[0])


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _finish(axes: list[plt.Axes], tasks: list[str], xlabel: str, ylabel: str, zero_line: bool = False) -> None:
    """Per-task panel titles, labels and grids; the legend on the last panel."""
    for ax, t in zip(axes, tasks):
        if zero_line:
            ax.axhline(0, color="0.4", lw=0.8)
        ax.set_title(t)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(fontsize=6, loc="best")


def _colors(n: int) -> list:
    return [plt.cm.tab10(i % 10) for i in range(n)]


def degradation(result: dict[str, Any], metric: str, path: Path) -> Path:
    """Metric against synthetic ratio, one panel per task, one line per (group, iteration >= 1)."""
    tasks = result["tasks"]
    fig, axes = _grid(len(tasks), f"{METRIC_LABEL[metric]} vs synthetic ratio (mean ± sd over seeds)")
    for color, g in zip(_colors(len(result["groups"])), result["groups"]):
        its = [it for it in g["iterations"] if it >= 1] or g["iterations"]
        for k, it in enumerate(its):
            style = dict(color=color, alpha=0.35 + 0.65 * (k + 1) / len(its), marker="o", ms=3, capsize=2)
            for ax, t in zip(axes, tasks):
                pts = g["curves"][metric][t][it]
                ratios = sorted(pts)
                ax.errorbar(ratios, [pts[r]["mean"] for r in ratios], yerr=[pts[r]["std"] for r in ratios],
                            label=f"{g['label']} iter{it}", **style)
    _finish(axes, tasks, "synthetic ratio", METRIC_LABEL[metric])
    return _save(fig, path)


def relative_score(result: dict[str, Any], tolerance: float, path: Path) -> Path:
    """Relative score change against ratio 0 (final iteration), the tolerance band and safe ratios."""
    tasks = result["tasks"]
    fig, axes = _grid(len(tasks), f"Score relative to ratio 0, final iteration (band: -{tolerance:.0%} tolerance)")
    for color, g in zip(_colors(len(result["groups"])), result["groups"]):
        final = g["final_iteration"]
        for ax, t in zip(axes, tasks):
            rel = g["relative"]["score"][t][final]
            ratios = sorted(rel)
            ax.plot(ratios, [100 * rel[r] for r in ratios], marker="o", color=color, label=f"{g['label']} (iter{final})")
            safe = g["safe"][t].get(final)
            if safe:
                ax.axvline(safe["ratio"], color=color, ls=":", lw=1)
    for ax in axes:
        ax.axhspan(-100 * tolerance, 100 * tolerance, color="0.85", zorder=0)
    _finish(axes, tasks, "synthetic ratio", "% change vs ratio 0", zero_line=True)
    return _save(fig, path)


def ece_lead(result: dict[str, Any], path: Path) -> Path:
    """Per task: score and ECE relative to ratio 0 over iterations, at each group's largest ratio."""
    tasks = result["tasks"]
    fig, axes = _grid(len(tasks), "Does ECE move before the score? Change vs ratio 0 at the largest ratio (solid: score, dashed: ECE)")
    for color, g in zip(_colors(len(result["groups"])), result["groups"]):
        top = max(g["ratios"])
        if top == 0:
            continue
        for ax, t in zip(axes, tasks):
            its = g["iterations"]
            score = [100 * g["relative"]["score"][t][it].get(top, np.nan) for it in its]
            ece = [100 * g["relative"]["ece"][t][it].get(top, np.nan) for it in its]
            ax.plot(its, score, color=color, marker="o", label=f"{g['label']} score @{top:.0%}")
            ax.plot(its, ece, color=color, marker="s", ls="--", label=f"{g['label']} ECE @{top:.0%}")
            ax.set_xticks(its)
    _finish(axes, tasks, "iteration", "% change vs ratio 0", zero_line=True)
    return _save(fig, path)


def safe_vs_size(result: dict[str, Any], path: Path) -> Path | None:
    """Safe ratio (final iteration) against parameters, log scale, with the fitted line."""
    fits = result["size_fit"]
    if not fits:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.4), constrained_layout=True)
    for color, (mode, fit) in zip(_colors(len(fits)), fits.items()):
        n_tasks = len(fit["per_task"])
        # one mode: a colour per task; several: a colour per mode. Tasks sit side by side around each
        # size (a small shift on the log axis), so tasks with the same safe ratio do not hide each other
        task_colors = _colors(n_tasks) if len(fits) == 1 else [color] * n_tasks
        for k, (marker, task_color, (t, per)) in enumerate(zip("osD^v" * 4, task_colors, fit["per_task"].items())):
            if per["points"]:
                xs, ys = zip(*per["points"])
                shift = 10 ** (0.012 * (k - (n_tasks - 1) / 2))
                ax.scatter([x * shift for x in xs], ys, marker=marker, color=task_color, label=f"{t} ({mode})", alpha=0.85)
        pooled = fit["pooled"]
        if pooled:
            xs = np.logspace(np.log10(min(p[0] for per in fit["per_task"].values() for p in per["points"])),
                             np.log10(max(p[0] for per in fit["per_task"].values() for p in per["points"])), 20)
            ax.plot(xs, pooled["intercept"] + pooled["slope_per_decade"] * np.log10(xs),
                    color="0.25" if len(fits) == 1 else color,
                    label=f"fit ({mode}): {pooled['slope_per_decade']:+.3f}/decade")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("safe synthetic ratio")
    ax.set_title("Safe ratio vs model size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return _save(fig, path)


def sensitivity_bars(result: dict[str, Any], at: float, path: Path) -> Path:
    """Relative score change per task at ratio `at` beside the paper's."""
    sens = sensitivity(result, at)
    tasks = [t for t in result["tasks"] if sens.get(t) is not None]
    fig, ax = plt.subplots(figsize=(5.5, 3.2), constrained_layout=True)
    x = np.arange(len(tasks))
    ax.bar(x - 0.2, [100 * sens[t] for t in tasks], 0.4, label=f"these runs (ratio {at:.0%})")
    paper = result["paper"]["sensitivity"]
    ax.bar(x + 0.2, [100 * paper[t] if t in paper else np.nan for t in tasks], 0.4, label="paper")
    ax.set_xticks(x, tasks)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_ylabel("% change vs ratio 0")
    ax.set_title("Task sensitivity")
    ax.legend(fontsize=7)
    return _save(fig, path)


def make_all(result: dict[str, Any], out: Path, tolerance: float, at: float) -> dict[str, Path]:
    """Write every figure into `out`; name -> path (figures that have no data are left out)."""
    out.mkdir(parents=True, exist_ok=True)
    figs = {
        "score_vs_ratio": degradation(result, "score", out / "score_vs_ratio.png"),
        "ece_vs_ratio": degradation(result, "ece", out / "ece_vs_ratio.png"),
        "relative_score": relative_score(result, tolerance, out / "relative_score.png"),
        "ece_lead": ece_lead(result, out / "ece_lead.png"),
        "self_bleu_vs_ratio": degradation(result, "self_bleu", out / "self_bleu_vs_ratio.png"),
        "distinct_2_vs_ratio": degradation(result, "distinct_2", out / "distinct_2_vs_ratio.png"),
        "safe_vs_size": safe_vs_size(result, out / "safe_vs_size.png"),
        "sensitivity": sensitivity_bars(result, at, out / "sensitivity.png"),
    }
    return {k: v for k, v in figs.items() if v is not None}
