"""Stage `prepare`: write every task's external (human-made) train and test splits.

`prepare.source: builtin` (the default): the built-in families are generated from `seed`, so the
data is exactly reproducible and every metric is exact.

`prepare.source: hub` (or `prepare.sources.<task>: hub` for one task): the paper's benchmarks
(CommonsenseQA, GSM8K, NQ-Open, SQuAD 2.0, MBPP and HumanEval) read through `datasets` and mapped
into the same families' formats
(`synthmix.tasks.hub`, docs/paper-data.md); `train_size`/`test_size` are caps (a seeded sample),
null keeps every row. Each task's provenance (dataset, config, split, revision, fingerprint, rows
skipped or dropped) goes to data/external/<task>/source.json.

A YAML task (params.yaml `task_paths`, synthmix.tasks.yaml_task): its dataset through `datasets`,
rendered by its templates as lm-evaluation-harness reads them, capped like hub data, with the same
source.json.

Also records each task's trivial baseline: the score the model must beat.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset

from synthmix import paths
from synthmix.params import Params
from synthmix.records import write_json
from synthmix.tasks import TaskFamily
from synthmix.tasks.hub import HubError
from synthmix.tasks.yaml_spec import TaskYamlError


def _builtin(params: Params, task: TaskFamily) -> tuple[dict[str, list[dict]], None]:
    return {split: task.build(split, params.size(task.name, split), params.seed) for split in ("train", "test")}, None


def _loaded(params: Params, task: TaskFamily) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """A hub or YAML task's splits, capped, with where they came from (source.json)."""
    caps = {split: params.size(task.name, split) for split in ("train", "test")}
    if task.source == "yaml":
        data = task.load(caps, params.seed)
    else:
        from synthmix.tasks.hub import load_task

        data = load_task(task.name, params.prepare.hub[task.name], caps, params.seed)
    splits = {split: d.examples for split, d in data.items()}
    source = {"task": task.name, "seed": params.seed, "source": task.source, **{split: d.info for split, d in data.items()},
              "gold_checks": _gold_checks(task, splits)}
    return splits, source


def _gold_checks(task: TaskFamily, splits: dict[str, list[dict]]) -> dict[str, Any]:
    """How the validate stage's rules for hub data see the gold data: the share of gold examples failing
    each of the family's checks, and the length bounds measured on the train split with the gold
    lengths they cover. The shares should be 0: a non-zero one means validate flags that share of
    synthetic samples whatever the model writes (a mapping or a rule that does not fit the data).
    Also the gold completions' lengths in characters, which the generation budget
    (params.yaml `max_new_tokens`) must cover, at roughly 3-4 characters a token."""
    rows = splits["train"] + splits["test"]
    bounds = task.length_bounds(splits["train"])
    failed: dict[str, float] = {}
    for ex in rows:
        for key, ok in task.checks(ex).items():
            failed[key] = failed.get(key, 0.0) + (not ok)
    lengths = sorted(len(ex["completion"]) for ex in rows)
    lo, hi = bounds["completion"]
    plo, phi = bounds["prompt"]
    return {
        "failed_share": {key: count / len(rows) for key, count in sorted(failed.items())},
        "completion_chars": {"family_bounds": list(task.completion_chars), "bounds": [lo, hi],
                             "gold_min": lengths[0], "gold_max": lengths[-1],
                             "gold_p95": lengths[int(0.95 * (len(lengths) - 1))],
                             "outside_share": sum(not lo <= n <= hi for n in lengths) / len(rows)},
        "prompt_chars": {"bounds": [plo, phi],
                         "outside_share": sum(not plo <= len(ex["prompt"]) <= phi for ex in rows) / len(rows)},
        "family_max_new_tokens": task.max_new_tokens,
    }


def untracked(task: TaskFamily, dvc_yaml: Path = Path("dvc.yaml")) -> list[str]:
    """A YAML task's files (its YAML, its local data) that no dependency of dvc.yaml's prepare stage
    covers: DVC would not rerun the study when they change. Empty outside a DVC project."""
    if task.source != "yaml" or not dvc_yaml.exists():
        return []
    stage = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}).get("prepare", {})
    deps = [Path(d).resolve() for d in stage.get("deps", [])]
    files = [str(task.spec.file), *task.local_files()]
    return [f for f in files if not any(Path(f).resolve().is_relative_to(d) for d in deps)]


def run(params: Params) -> int:
    """Build and write data/external/<task>/{train,test}.jsonl and metrics/external.json.

    Every task is loaded before anything is written, so a dataset that cannot be read leaves the
    previous outputs as they were."""
    loaded = {}
    for name in params.tasks:
        task = params.task(name)
        outside = untracked(task)
        if outside:
            print(f"synthmix prepare: {name}: {', '.join(outside)} is not under any dependency of the prepare stage "
                  "in dvc.yaml, so DVC would not rerun the study when it changes: keep task YAMLs and their data "
                  "under configs/tasks, or add the folder to the deps of prepare, generate, validate and evaluate "
                  "in dvc.yaml", file=sys.stderr)
            return 2
        try:
            loaded[name] = (task, *(_builtin(params, task) if task.source == "builtin" else _loaded(params, task)))
        except (HubError, TaskYamlError) as err:
            print(f"synthmix prepare: {name}: {err}", file=sys.stderr)
            return 1
    summary = {}
    for name, (task, splits, source) in loaded.items():
        for split, rows in splits.items():
            out = paths.ensure_parent(paths.external(name, split))
            tmp = out.with_suffix(".jsonl.tmp")
            Dataset.from_list(rows).to_json(str(tmp), lines=True, force_ascii=False)
            tmp.replace(out)
        baseline = task.trivial_baseline(splits["train"], splits["test"])
        # numbers only: dvc metrics tabulates every key (the baseline's name is in the log/README)
        summary[name] = {"train": len(splits["train"]), "test": len(splits["test"]),
                         "trivial_baseline": baseline["score"]}
        print(f"{name}: {len(splits['train'])} train / {len(splits['test'])} test; "
              f"trivial baseline ({baseline['name']}) {task.score_name}={baseline['score']:.3f}")
        if source is not None:
            write_json(paths.external(name, "train").parent / "source.json", source)
            summary[name].update({f"{split}_available": source[split]["available"] for split in ("train", "test")})
            summary[name]["skipped_rows"] = source["train"]["skipped"] + source["test"]["skipped"]
            for split in ("train", "test"):
                info = source[split]
                print(f"  {split}: {info['path']} ({info.get('name') or 'default'}, {info['split']}; "
                      f"{info['loaded_from']}): {info['rows']} rows, {info['skipped']} skipped, "
                      f"{info['dropped_test_prompt_overlap']} dropped (prompt also in test), "
                      f"{info['examples']} kept (cap {info['cap']})")
            gold = source["gold_checks"]
            flagged = {k: v for k, v in gold["failed_share"].items() if v}
            flagged.update({f"{column} length outside {gold[column]['bounds']}": gold[column]["outside_share"]
                            for column in ("prompt_chars", "completion_chars") if gold[column]["outside_share"]})
            if flagged:
                shown = ", ".join(f"{k} {v:.1%}" for k, v in flagged.items())
                print(f"  note: the {name} family's validity rules reject gold examples ({shown}); validate "
                      "will flag that share of synthetic samples whatever the model writes")
    write_json(paths.METRICS / "external.json", summary)
    return 0
