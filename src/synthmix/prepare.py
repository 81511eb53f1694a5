"""Stage `prepare`: write every task's external (human-made stand-in) train and test splits.

The built-in families are generated from `seed`, so the data is exactly reproducible and every
metric is exact. Also records each task's trivial baseline: the score the model must beat.
"""

from __future__ import annotations

from datasets import Dataset

from synthmix import paths
from synthmix.params import Params
from synthmix.records import write_json
from synthmix.tasks import get_task


def run(params: Params) -> None:
    """Build and write data/external/<task>/{train,test}.jsonl and metrics/external.json."""
    summary = {}
    for name in params.tasks:
        task = get_task(name)
        splits = {split: task.build(split, params.size(name, split), params.seed) for split in ("train", "test")}
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
    write_json(paths.METRICS / "external.json", summary)
