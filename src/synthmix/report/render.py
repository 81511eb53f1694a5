"""The report as sections (title, text, tables, figures), written three ways from the same content:
report.html (self-contained: figures inlined), report.md (figures beside it) and report.json."""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthmix.records import write_text
from synthmix.report.analysis import PAPER, sensitivity

Table = tuple[list[str], list[list[Any]]]


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


def _safe_text(got: dict[str, Any]) -> tuple[str, str | None]:
    """A safe ratio (">= " when censored at the largest tested ratio) and its 95% interval (None: one seed)."""
    ci = got["ci95"]
    return (">= " if got["censored"] else "") + f"{got['ratio']:.2f}", f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else None


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return "—" if math.isnan(x) else f"{x:.3f}"
    return str(x)


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.1f}%"


def _ms(stat: dict[str, float]) -> str:
    """mean ± standard error (over seeds, or one run's over test items); the mean alone without one."""
    if not stat or not stat.get("n"):
        return "—"
    se = stat.get("se")
    if se is None or se != se:  # NaN: no standard error known
        return f"{stat['mean']:.3f}"
    return f"{stat['mean']:.3f} ± {se:.3f}"


def _interval(ci: Any) -> str:
    return "—" if not ci else f"[{100 * ci[0]:+.1f}%, {100 * ci[1]:+.1f}%]"


def _competence_text(c: dict[str, Any] | None) -> str:
    """A size step's iteration-0 task means and their difference with its 95% interval."""
    if not c:
        return "—"
    lo, hi = c["difference_ci"]
    return (f"{c['smaller']['score']:.3f} ± {c['smaller']['se']:.3f}, {c['larger']['score']:.3f} ± "
            f"{c['larger']['se']:.3f} ({c['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}])")


def sections(result: dict[str, Any], runs_table: Table, skipped: str) -> list[Section]:
    s = result["settings"]
    tasks = result["tasks"]
    out = [
        Section(
            "The paper's findings on these runs",
            f"Every comparison is against ratio 0 at the same iteration, model size and setting "
            f"(tolerance {s['tolerance']:.0%} relative; ECE warning at +{s['ece_relative_rise']:.0%}). "
            "Verdicts, judged on the 95% intervals: holds, does not hold, inconclusive (with the smallest effect these runs resolve), not testable here (with the reason), or not enough experiments (with the runs that would settle it).",
            [(["finding", "paper", "these runs", "verdict", "to settle"],
              [[f["finding"], f["paper"], f["measured"], f["verdict"], f["to_settle"] or ""] for f in result["findings"]])],
        ),
        Section("Experiments", f"{len(runs_table[1])} finished experiments"
                + (f"; left out: {skipped}" if skipped else "")
                + ".", [runs_table]),
        Section("Degradation curves",
                "Task score and ECE against the synthetic ratio, per task, iteration and model size; error bars: "
                "standard deviation over seeds.", [],
                ["score_vs_ratio", "ece_vs_ratio", "relative_score"]),
    ]
    controls = [(g, t, c) for g in result["groups"] for t in tasks if (c := g.get("control", {}).get(t))]
    control_rows = []
    for g, t, c in controls:
        control_rows.append([
            g["label"], t, f"{c['first_mean']:.3f}", f"{c['last_mean']:.3f}",
            f"{c['change']:+.3f}" + (f" [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]" if c["ci95"] else ""),
            ", ".join(f"{d:+.3f}" for d in c["per_seed"]),
            "—" if c["first_se"] is None else f"{2 * c['first_se']:.3f}",
            "—" if c["within_2se"] is None else "holds" if c["within_2se"] else "does not hold", c["trend"],
            "—" if c["spread"] is None else f"{c['spread']:.3f}" + (
                "" if c["spread_over_se"] is None else f" ({c['spread_over_se']:.1f}x)"),
        ])
    if controls:
        its = controls[0][2]
        out.append(Section(
            "Ratio 0 as the control: does it hold still?",
            f"Ratio 0's score at iteration {its['first']} and at the last iteration ({its['last']}), mean over seeds; "
            "the change with its 95% interval (bootstrap over seeds and test items); the convergence criterion (the "
            "change within two test-set standard errors of iteration 1's mean) and the trend the interval resolves. "
            "Spread: the standard deviation of a seed's ratio-0 scores over the iterations, pooled over seeds, and "
            "its multiple of one run's test-set SE. With train.init: base every ratio-0 iteration is phase 0 again "
            "on a new order, so the spread is the training order's noise: a ratio's effect smaller than it needs "
            "more seeds to resolve. With few seeds a bootstrap over them is too narrow (three seeds whose changes "
            "all share a sign give an interval that excludes zero, a one-in-eight chance under pure noise): read "
            "the per-seed changes beside it.",
            [(["group", "task", "first", "last", "change [95% CI]", "per seed", "2 SE", "criterion", "trend", "spread (x SE)"],
              control_rows)]))
    safe_rows = []
    for g in result["groups"]:
        for t in tasks:
            got = g["safe"][t].get(g["final_iteration"])
            if got is None:
                safe_rows.append([g["label"], f"{g['parameters'] / 1e6:.2f}M", t, "—", "—", "needs ratio 0 and a ratio above it"])
                continue
            ratio, ci = _safe_text(got)
            safe_rows.append([
                g["label"], f"{g['parameters'] / 1e6:.2f}M", t, ratio, ci or "— (needs 2+ seeds)",
                "every tested ratio was within tolerance" if got["censored"] else "",
            ])
    fit_rows = []
    for mode, fit in result["size_fit"].items():
        for t, per in [*fit["per_task"].items(), ("all tasks", {"fit": fit["pooled"]})]:
            f = per["fit"]
            if f:
                fit_rows.append([mode, t, f"{f['intercept']:.3f}", f"{f['slope_per_decade']:+.3f}", _fmt(f["r2"]), f["points"]])
    step_rows = [[mode, f"{st['smaller']} -> {st['larger']}", f"{_pct(st['change'][0])} {_interval(st['change_ci'][0])}",
                   f"{_pct(st['change'][1])} {_interval(st['change_ci'][1])}",
                   f"{_pct(st['difference'])} {_interval(st['difference_ci'])}", _competence_text(st.get("competence")),
                   len(st["tasks"])]
                  for mode, steps in result.get("size_steps", {}).items() for st in steps]
    at = s.get("size_ratio", 0.3)
    out.append(Section(
        "Safe threshold per task and model size",
        f"The largest tested ratio up to which every tested ratio keeps the score within {s['tolerance']:.0%} of ratio 0 "
        f"(final iteration); 95% interval from {s['bootstrap_samples']} bootstrap resamples of the seeds. "
        f"Paper: {PAPER['safe_ratio']}."
        + (" The log-size fit reads each size's safe ratio on the ratios every size ran ("
           + "; ".join(f"{mode}: {', '.join(f'{r:g}' for r in fit['ratios'])}" for mode, fit in result["size_fit"].items())
           + "), so a size run at fewer ratios is not compared on a coarser grid." if result["size_fit"] else "")
        + (f" Size steps (last table): each size against the next smaller one, the task mean of the relative change "
           f"at {at:.0%} with 95% intervals; finding 2 is judged on the difference's interval, where the larger size "
           f"is the more capable one (its iteration-0 task mean above the smaller's, beyond the interval; else the "
           f"finding is not testable here)." if step_rows else ""),
        [(["group", "parameters", "task", "safe ratio", "95% CI", "note"], safe_rows)]
        + ([(["mix mode / setting", "task", "intercept", "slope per decade of params", "R²", "points"], fit_rows)] if fit_rows else [])
        + ([(["mix mode / setting", "sizes", f"smaller: change at {at:.0%}", f"larger: change at {at:.0%}",
              "larger minus smaller (> 0: lost less)", "iteration-0 score: smaller, larger (larger minus smaller)",
              "tasks"], step_rows)] if step_rows else []),
        ["safe_vs_size"],
    ))
    lead_rows = []
    for g in result["groups"]:
        for t in tasks:
            for ratio, v in g["lead"].get(t, {}).items():
                lead_rows.append([g["label"], t, f"{ratio:.2f}", _fmt(v["ece_rise_iteration"]), _fmt(v["score_fall_iteration"]), _fmt(v["lead"])])
    gate = result["gate"]
    gate_rows = [[r["run"], r["model"], f"{r['ratio']:.2f}", r["seed"], r["mix_mode"],
                  "; ".join(f"iter{it}: {', '.join(ts)}" for it, ts in r["flagged"].items() if ts) or "none"]
                 for r in gate["rows"]]
    out.append(Section(
        "Early warning: the gate and ECE's lead",
        f"The gate (its rule: ECE against iteration 0) flagged {gate['runs_flagged']} of {gate['runs']} runs. "
        f"Lead: the first iteration where ECE rose more than {s['ece_relative_rise']:.0%} over ratio 0, and where the score "
        f"fell more than {s['tolerance']:.0%} below it; lead = score fall - ECE rise (positive: ECE warned first).",
        [(["group", "task", "ratio", "ECE rise at", "score fall at", "lead (iterations)"], lead_rows),
         (["run", "model", "ratio", "seed", "mix", "gate flags"], gate_rows)],
        ["ece_lead"],
    ))
    sens = sensitivity(result, s["sensitivity_ratio"])
    ranked = sorted((t for t in sens if sens[t] is not None), key=lambda t: sens[t])
    out.append(Section(
        "Task sensitivity",
        f"Relative score change at ratio {s['sensitivity_ratio']:.0%} (final iteration, mean over model sizes), most "
        "sensitive first, beside the paper's Math > Code > Factual > Reading.",
        [(["rank", "task", "these runs", "paper"],
          [[i + 1, t, _pct(sens[t]), _pct(result["paper"]["sensitivity"].get(t))] for i, t in enumerate(ranked)])],
        ["sensitivity"],
    ))
    out.append(Section("Diversity of what the models generate",
                       "Self-BLEU (higher = less diverse) and Distinct-2 of sampled generations against the ratio.",
                       [], ["self_bleu_vs_ratio", "distinct_2_vs_ratio"]))
    if result.get("quality_control"):
        def safe(got: dict[str, Any] | None) -> str:
            if got is None:
                return "—"
            ratio, ci = _safe_text(got)
            return f"{ratio} {ci or '(1 seed: no interval)'}"

        out.append(Section(
            "Quality control: the safe ratio with and without verification",
            "The paper's open question 4: how far verification filtering (validate.filter: verified, STaR's filter) "
            "moves the safe threshold. The same setting run unfiltered (the paper's) and filtered; safe ratio at the "
            f"final iteration with its 95% bootstrap interval; shift = verified - unfiltered (tolerance {s['tolerance']:.0%}). "
            "Draws: generate.max_attempts of the verified runs (rejection sampling up to that many draws per prompt).",
            [(["model", "mix", "task", "safe ratio, unfiltered", "safe ratio, verified", "draws", "shift"],
              [[r["model"], r["mix_mode"], r["task"], safe(r["none"]), safe(r["verified"]), str(r["max_attempts"]),
                "—" if r["shift"] is None else f"{r['shift']:+.2f}"] for r in result["quality_control"]])],
            [],
        ))
    if result["mix_modes"]:
        out.append(Section(
            "Mixing modes", "Relative score change against ratio 0 at the final iteration. Replace answers `ratio` of "
            "the prompts with the model's own answers; drop removes the same examples and adds nothing, so replace "
            "minus drop is what the wrong labels cost beyond the lost correct ones; accumulate keeps every external "
            "example (— where a mode was not run).",
            [(["model", "task", "ratio", "replace", "drop", "accumulate"],
              [[r["model"], r["task"], f"{r['ratio']:.2f}", _pct(r["replace"]), _pct(r["drop"]), _pct(r["accumulate"])]
               for r in result["mix_modes"]])],
        ))
    synthetic_rows = []
    ratios = sorted({r for g in result["groups"] for r in g["ratios"]})
    for g in result["groups"]:
        for t in tasks:
            for it, by_ratio in g.get("synthetic_accuracy", {}).get(t, {}).items():
                cells = [_ms(by_ratio.get(ratio)) for ratio in ratios]
                if any(c != "—" for c in cells):
                    synthetic_rows.append([g["label"], t, it, *cells])
    if synthetic_rows:
        out.append(Section(
            "Synthetic-label accuracy",
            "The share of each iteration's synthetic samples that are right against their source prompt's gold "
            "answer (answers mode; instances mode: the share that parse and pass the family's checks), mean ± "
            "standard error over seeds, by the ratio of the run that generated them. The paper's regime is a "
            "model that is competent but imperfect: 30-90% right.",
            [(["group", "task", "iteration", *[f"ratio {r:.2f}" for r in ratios]], synthetic_rows)]))
    detail = []
    for g in result["groups"]:
        for t in tasks:
            for it in g["iterations"]:
                for ratio in g["ratios"]:
                    sc, ec = g["curves"]["score"][t][it].get(ratio), g["curves"]["ece"][t][it].get(ratio)
                    ci = g.get("relative_ci", {}).get(t, {}).get(it, {}).get(ratio)
                    detail.append([g["label"], t, it, f"{ratio:.2f}", _ms(sc), _pct(g["relative"]["score"][t][it].get(ratio)),
                                   _interval(ci), _ms(ec), _pct(g["relative"]["ece"][t][it].get(ratio))])
    out.append(Section(
        "All numbers",
        "Mean ± standard error (over seeds; with one seed, over test items); changes are relative to ratio 0 at the "
        "same iteration, with their 95% interval from a paired bootstrap over test items and seeds (seeds alone "
        "where the predictions were not in the local cache).",
        [(["group", "task", "iteration", "ratio", "score", "vs ratio 0", "95% interval", "ECE", "vs ratio 0"], detail)]))
    return out


def to_markdown(title: str, secs: list[Section], figures: dict[str, Path], out_dir: Path) -> str:
    lines = [f"# {title}", ""]
    for sec in secs:
        lines += [f"## {sec.title}", ""]
        if sec.text:
            lines += [sec.text, ""]
        for headers, rows in sec.tables:
            if not rows:
                continue
            lines.append("| " + " | ".join(headers) + " |")
            lines.append("|" + "---|" * len(headers))
            for row in rows:
                lines.append("| " + " | ".join(_fmt(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |")
            lines.append("")
        for name in sec.figures:
            if name in figures:
                lines += [f"![{name}]({figures[name].relative_to(out_dir).as_posix()})", ""]
    return "\n".join(lines)


def to_html(title: str, secs: list[Section], figures: dict[str, Path]) -> str:
    def cell(c: Any, header: str) -> str:
        text = html.escape(_fmt(c))
        if header == "verdict":
            cls = {"holds": "holds", "does not hold": "fails"}.get(str(c), "unknown")
            return f'<td class="verdict {cls}">{text}</td>'
        return f"<td>{text}</td>"

    body = []
    for sec in secs:
        body.append(f"<section><h2>{html.escape(sec.title)}</h2>")
        if sec.text:
            body.append(f"<p>{html.escape(sec.text)}</p>")
        for headers, rows in sec.tables:
            if not rows:
                continue
            head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
            trs = "".join("<tr>" + "".join(cell(c, h) for c, h in zip(row, headers)) + "</tr>" for row in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
        for name in sec.figures:
            if name in figures:
                data = base64.b64encode(figures[name].read_bytes()).decode()
                body.append(f'<figure><img class="figure" alt="{name}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{html.escape(name)}</figcaption></figure>")
        body.append("</section>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1500px;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top;text-align:left}th{background:#f3f3f3}.verdict.holds{background:#d9f2d9}"
        ".verdict.fails{background:#f8d7d7}.verdict.unknown{background:#fff3cd}img.figure{max-width:100%}"
        "figcaption{color:#777;font-size:12px}"
    )
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{''.join(body)}</body></html>\n")


def write(result: dict[str, Any], secs: list[Section], figures: dict[str, Path], out_dir: Path, title: str) -> dict[str, Path]:
    """Write report.html, report.md and report.json into `out_dir` (figures are already there)."""
    paths = {"html": out_dir / "report.html", "md": out_dir / "report.md", "json": out_dir / "report.json"}
    write_text(paths["html"], to_html(title, secs, figures))
    write_text(paths["md"], to_markdown(title, secs, figures, out_dir))
    write_text(paths["json"], json.dumps(clean(result), indent=1, sort_keys=True, allow_nan=False) + "\n")
    return paths


def clean(o: Any) -> Any:
    """JSON-safe copy: NaN -> null, tuples -> lists, numeric keys -> strings (JSON has no others)."""
    if isinstance(o, dict):
        return {str(k): clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    if isinstance(o, float) and math.isnan(o):
        return None
    return o
