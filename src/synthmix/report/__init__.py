"""`synthmix report`: the paper's four findings checked on every experiment of the repository.

Reads every finished experiment through `dvc exp show --json` (all commits by default), groups
them by model size, mixing mode and setting, and writes into the output directory:

- report.html: self-contained (figures inlined), for people;
- report.md: the same tables, with the figures as PNG files beside it;
- report.json: every number, for scripts.

With `--archive DIR` it also writes each run it reported on as a record that git can keep
(synthmix.report.archive); with `--from-archive DIR` it adds the records there to what DVC holds,
so a sweep run in pieces, or one whose experiments are gone from every cache, can be reported on.
"""

from __future__ import annotations

import time
from pathlib import Path

from synthmix.params import Params
from synthmix.report import analysis, archive, collect, figures, render

TITLE = "synthmix study report"


def build(shown: list[dict], out: Path, settings: analysis.Settings, repo: str | None = None,
          archived: list[collect.Run] | None = None, archive_to: Path | None = None) -> dict[str, Path]:
    """Analyse an `exp show --json` listing and write the report into `out`; kind -> path. With
    `repo`, each run's per-item test scores are read through DVC for the paired bootstrap.
    `archived` runs (records read back) are added, the newest of a run held twice kept; with
    `archive_to`, every run reported on but the workspace is written there as a record."""
    found = collect.collect(shown)
    if repo is not None and found.runs:
        with_items = collect.load_items(found.runs, repo)  # DVC's runs only: records carry their items
        print(f"per-item test scores of {with_items} of {len(found.runs)} experiments (the others: seeds only)")
    if archived:
        found = collect.merge(found, archived)
        print(f"{len(archived)} archived experiments added ({len(found.runs)} distinct in all)")
    if not found.runs:
        reasons = found.skipped_summary() or "no rows at all"
        raise SystemExit(f"synthmix report: no finished experiment to report on ({reasons})")
    if archive_to is not None:
        # the workspace is no experiment: uncommitted, named by no commit, and possibly mid-run
        kept = [r for r in found.runs if r.rev != "workspace"]
        written = archive.write(kept, archive_to)
        print(f"archived {len(written)} experiments in {archive_to}"
              + ("; not the workspace (commit it, or run it with `dvc exp run`, to archive it)"
                 if len(kept) < len(found.runs) else ""))
    result = analysis.analyse(found.runs, settings)
    result["runs"] = [
        {"name": r.name, "rev": r.rev, "model": r.model, "ratio": r.ratio, "seed": r.seed, "mix_mode": r.mix_mode,
         "iterations": r.iterations, "created": r.created}
        for r in found.runs
    ]
    result["skipped"] = found.skipped
    labels = analysis.setting_labels(found.runs)
    runs_table = (["experiment", "model", "ratio", "seed", "mix", "iterations", "setting"],
                  [[r.name, r.model, f"{r.ratio:.2f}", r.seed, r.mix_mode, max(r.iterations), labels[id(r)] or "—"]
                   for r in found.runs])
    out.mkdir(parents=True, exist_ok=True)
    figs = figures.make_all(result, out / "figures", settings.tolerance, settings.sensitivity_ratio)
    secs = render.sections(result, runs_table, found.skipped_summary())
    return {**render.write(result, secs, figs, out, TITLE), **figs}


def run(
    params: Params,
    out: str = "reports/study",
    repo: str = ".",
    rev: list[str] | None = None,
    head_only: bool = False,
    tolerance: float | None = None,
    at_ratio: float | None = None,
    bootstrap: int | None = None,
    archive_dir: str | None = None,
    from_archive: list[str] | None = None,
) -> int:
    cfg = params.report
    settings = analysis.Settings(
        tolerance=cfg.tolerance if tolerance is None else tolerance,
        sensitivity_ratio=cfg.sensitivity_ratio if at_ratio is None else at_ratio,
        bootstrap_samples=cfg.bootstrap_samples if bootstrap is None else bootstrap,
        ece_relative_rise=params.gate.ece_relative_rise,
        # the families' order, groups and paper numbers, this study's YAML tasks included
        tasks=analysis.task_info(params.task(name) for name in params.tasks),
    )
    started = time.perf_counter()
    try:
        archived = [run for directory in from_archive or [] for run in archive.read(Path(repo) / directory)]
    except archive.ArchiveError as err:
        raise SystemExit(f"synthmix report: --from-archive: {err}") from err
    shown = collect.exp_show(repo, all_commits=not head_only, revs=rev)
    written = build(shown, Path(repo) / out, settings, repo=repo, archived=archived,
                    archive_to=Path(repo) / archive_dir if archive_dir else None)
    print(f"read {len(shown)} commits' experiments in {time.perf_counter() - started:.1f}s")
    for kind in ("html", "md", "json"):
        print(f"{kind}: {written[kind]}")
    return 0
