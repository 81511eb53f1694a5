"""lm-evaluation-harness task YAMLs, read and checked: what a YAML task may say (synthmix.tasks.yaml_task
runs it).

params.yaml `task_paths` lists folders (or files) of task YAMLs, like lm-eval's `--include_path`;
`tasks:` names them beside the built-in families. A YAML task gets everything a built-in one gets:
answers-mode generation, great-expectations validation, mixing, training, evaluation with ECE and
diversity, synthetic accuracy and the report.

The keys read, each with lm-eval's meaning (lm_eval.api.task.ConfigurableTask, 0.4.x):

- ``task``: the name `tasks:` uses (also every path: models/iter0/<task>).
- ``dataset_path``, ``dataset_name``, ``dataset_kwargs``: ``datasets.load_dataset(dataset_path,
  dataset_name, **dataset_kwargs)``; ``json``/``csv``/``parquet`` with ``dataset_kwargs.data_files``
  reads local files (relative paths from the project root, as `datasets` resolves them).
- ``training_split``: what synthmix fine-tunes on (required: the study trains); ``test_split``,
  else ``validation_split``: what it evaluates on.
- ``doc_to_text``, ``doc_to_target``, ``doc_to_choice``: a column name or a Jinja2 template of the
  row; a template rendering to digits is a choice index when ``doc_to_choice`` is set, a
  ``doc_to_choice`` template renders to a Python list literal; ``description`` is put before every
  prompt; ``target_delimiter`` (default " ") between prompt and answer.
- ``output_type``: ``generate_until`` (greedy answers, scored through the filters and metrics) or
  ``multiple_choice`` (the choice of highest summed log-likelihood, lm-eval's ``acc``).
- ``generation_kwargs``: ``until`` (the answer is cut at the first of these strings) and
  ``max_gen_toks`` (the generation budget; lm-eval's default 256). ``do_sample: false`` and
  ``temperature: 0`` are accepted (evaluation is greedy); synthetic data is sampled at the study's
  ``generate.temperature``/``top_p``, not the YAML's.
- ``filter_list``: pipelines of ``regex`` (``regex_pattern``, ``group_select``, ``fallback``),
  ``remove_whitespace`` and a final ``take_first``; the first pipeline gives the headline score,
  every other one its own ``<metric>,<filter name>`` score.
- ``metric_list``: ``exact_match`` (``ignore_case``, ``ignore_punctuation``, ``ignore_numbers``,
  ``regexes_to_ignore``) for generate_until; ``acc`` and ``f1`` (binary F1 over gold and predicted
  choice indices) for multiple_choice. The first metric is the task's headline score.
- ``include``: another YAML of the same folder whose keys this one inherits and overrides.
- Read and not used: ``tag``, ``group``, ``task_alias``, ``fewshot_split``, ``metadata``,
  ``aggregation`` and ``higher_is_better`` (lm-eval's defaults only), ``num_fewshot: 0``,
  ``repeats: 1``.

Anything else, or a value outside this subset (few-shot prompts, sampling at evaluation, Python
``!function`` hooks, another output type), stops params validation with a message naming the file
and the key, before any stage runs. ``metadata.synthmix`` holds what synthmix alone reads: ``group``
(reasoning | grounded, the report's finding 4) and ``order`` (position in tables).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


#: keys this module reads (see the docstring for what each means here)
SUPPORTED_KEYS = frozenset({
    "task", "dataset_path", "dataset_name", "dataset_kwargs", "training_split", "validation_split", "test_split",
    "doc_to_text", "doc_to_target", "doc_to_choice", "description", "target_delimiter", "output_type",
    "generation_kwargs", "filter_list", "metric_list", "include",
    # read, not used (labels, lm-eval bookkeeping, or only their neutral values)
    "tag", "group", "task_alias", "fewshot_split", "metadata", "num_fewshot", "repeats",
})
OUTPUT_TYPES = ("generate_until", "multiple_choice")
#: metric -> the output type it applies to, and its keyword arguments
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "exact_match": ("generate_until", frozenset({"ignore_case", "ignore_punctuation", "ignore_numbers",
                                                  "regexes_to_ignore"})),
    "acc": ("multiple_choice", frozenset()),
    "f1": ("multiple_choice", frozenset()),
}
METRIC_BOOKKEEPING = frozenset({"metric", "aggregation", "higher_is_better"})
AGGREGATION = {"exact_match": "mean", "acc": "mean", "f1": "f1"}
FILTERS = {"regex": frozenset({"regex_pattern", "group_select", "fallback"}), "remove_whitespace": frozenset(),
           "take_first": frozenset()}
GENERATION_KEYS = frozenset({"until", "max_gen_toks", "do_sample", "temperature"})
#: lm-eval's defaults (TaskConfig, HFLM)
DEFAULT_UNTIL = ["\n\n"]
DEFAULT_MAX_GEN_TOKS = 256
REGEX_FALLBACK = "[invalid]"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class TaskYamlError(ValueError):
    """A task YAML that synthmix cannot run; the message names the file and the key."""


# ----- the YAML ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filter:
    """One `filter_list` entry: a name and its steps (function, arguments)."""

    name: str
    steps: tuple[tuple[str, dict[str, Any]], ...]

    def apply(self, text: str) -> str:
        """lm-eval's filter pipeline on one response (take_first of a single response is itself)."""
        for function, args in self.steps:
            if function == "regex":
                found = re.findall(args["regex_pattern"], text)
                if not found:
                    text = args.get("fallback", REGEX_FALLBACK)
                    continue
                match = found[args.get("group_select", 0)]
                if isinstance(match, tuple):  # several groups: the first that matched
                    match = next((m for m in match if m), None)
                    if match is None:
                        text = args.get("fallback", REGEX_FALLBACK)
                        continue
                text = match.strip()
            elif function == "remove_whitespace":
                text = text.strip()
        return text

    @property
    def fallback(self) -> str | None:
        """What the pipeline returns when its regex finds nothing (None: it has no regex)."""
        for function, args in self.steps:
            if function == "regex":
                return args.get("fallback", REGEX_FALLBACK)
        return None


@dataclass(frozen=True)
class Metric:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """A task YAML, checked: everything the family needs, nothing else."""

    file: Path
    name: str
    output_type: Literal["generate_until", "multiple_choice"]
    dataset_path: str
    dataset_name: str | None
    dataset_kwargs: dict[str, Any]
    training_split: str
    test_split: str
    doc_to_text: Any
    doc_to_target: Any
    doc_to_choice: Any
    description: str
    target_delimiter: str
    until: tuple[str, ...]
    max_gen_toks: int
    filters: tuple[Filter, ...]
    metrics: tuple[Metric, ...]
    group: Literal["reasoning", "grounded"] | None
    order: int


def _fail(file: Path, key: str, message: str) -> TaskYamlError:
    return TaskYamlError(f"{file}: {key}: {message}")


def _read_yaml(file: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML's mapping with its `include` chain merged in (the including file's keys win)."""
    if file in seen:
        raise _fail(file, "include", f"includes itself through {' -> '.join(map(str, seen))}")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as err:
        line = f"line {err.problem_mark.line + 1}: " if err.problem_mark else ""
        raise _fail(file, "(YAML)", f"{line}{err.problem}: Python hooks such as `!function` are not supported; "
                    "write the field as a column name or a Jinja2 template") from None
    except yaml.YAMLError as err:
        raise _fail(file, "(YAML)", f"not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise _fail(file, "(top level)", f"must be a mapping of lm-eval task keys, got {type(raw).__name__}")
    include = raw.pop("include", None)
    if include is None:
        return raw
    if not isinstance(include, str):
        raise _fail(file, "include", f"must be one file name (got {include!r})")
    base_file = Path(include) if os.path.isabs(include) else file.parent / include
    if not base_file.is_file():
        raise _fail(file, "include", f"{base_file} does not exist")
    return {**_read_yaml(base_file, (*seen, file)), **raw}


def _template_or_column(file: Path, key: str, value: Any, *, allow_int: bool = False,
                        allow_list: bool = False) -> Any:
    if isinstance(value, str) and value:
        return value
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if allow_list and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if allow_list and isinstance(value, dict) and value:
        return [str(v) for v in value.values()]
    kinds = "a column name or a Jinja2 template" + (", or an integer" if allow_int else "") + (
        ", or a list of choices" if allow_list else "")
    raise _fail(file, key, f"must be {kinds} (got {value!r}); Python functions (!function) are not supported")


def parse_spec(file: Path) -> TaskSpec:
    """Check one task YAML against the supported subset; TaskYamlError names the first bad key."""
    raw = _read_yaml(file)
    unknown = sorted(set(raw) - SUPPORTED_KEYS)
    if unknown:
        raise _fail(file, ", ".join(unknown), f"not supported by synthmix (supported: {', '.join(sorted(SUPPORTED_KEYS))})")
    name = raw.get("task")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(file, "task", f"must be one task name of letters, digits, '_', '.' or '-' (got {name!r}); "
                    "group YAMLs (a list of tasks) are not supported: name the tasks in params.yaml `tasks:`")
    output_type = raw.get("output_type", "generate_until")
    if output_type not in OUTPUT_TYPES:
        raise _fail(file, "output_type", f"{output_type!r} is not supported; allowed: {', '.join(OUTPUT_TYPES)}")
    for key in ("dataset_path", "training_split"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            why = " (synthmix fine-tunes on it)" if key == "training_split" else ""
            raise _fail(file, key, f"required{why}: a string (got {raw.get(key)!r})")
    test_split = raw.get("test_split") or raw.get("validation_split")
    if not isinstance(test_split, str):
        raise _fail(file, "test_split", "required (or validation_split): the split synthmix evaluates on")
    if test_split == raw["training_split"]:
        raise _fail(file, "test_split", f"{test_split!r} is also training_split: the test split must be held out")
    kwargs = raw.get("dataset_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise _fail(file, "dataset_kwargs", f"must be a mapping of datasets.load_dataset arguments (got {kwargs!r})")
    if raw.get("dataset_name") is not None and not isinstance(raw["dataset_name"], str):
        raise _fail(file, "dataset_name", f"must be a string (got {raw['dataset_name']!r})")
    for key, neutral in (("num_fewshot", 0), ("repeats", 1)):
        if raw.get(key) not in (None, neutral):
            why = ("synthmix fine-tunes on training_split and evaluates zero-shot" if key == "num_fewshot"
                   else "evaluation is one greedy answer per question")
            raise _fail(file, key, f"{raw[key]!r} is not supported ({why}); remove it or set {neutral}")
    if "doc_to_text" not in raw or "doc_to_target" not in raw:
        raise _fail(file, "doc_to_text" if "doc_to_text" not in raw else "doc_to_target", "required")
    doc_to_text = _template_or_column(file, "doc_to_text", raw["doc_to_text"])
    doc_to_target = _template_or_column(file, "doc_to_target", raw["doc_to_target"], allow_int=True)
    doc_to_choice = None
    if raw.get("doc_to_choice") is not None:
        doc_to_choice = _template_or_column(file, "doc_to_choice", raw["doc_to_choice"], allow_list=True)
    if output_type == "multiple_choice" and doc_to_choice is None:
        raise _fail(file, "doc_to_choice", "required for output_type multiple_choice")
    for key in ("description", "target_delimiter"):
        if key in raw and not isinstance(raw[key], str):
            raise _fail(file, key, f"must be a string (got {raw[key]!r})")

    gen = raw.get("generation_kwargs") or {}
    if not isinstance(gen, dict):
        raise _fail(file, "generation_kwargs", f"must be a mapping (got {gen!r})")
    if gen and output_type != "generate_until":
        raise _fail(file, "generation_kwargs", "only for output_type generate_until")
    bad = sorted(set(gen) - GENERATION_KEYS)
    if bad:
        raise _fail(file, f"generation_kwargs.{bad[0]}", f"not supported (supported: {', '.join(sorted(GENERATION_KEYS))})")
    if gen.get("do_sample") not in (None, False):
        raise _fail(file, "generation_kwargs.do_sample", "evaluation is greedy: only false (synthetic data is "
                    "sampled at params.yaml generate.temperature / generate.top_p)")
    if gen.get("temperature") not in (None, 0, 0.0):
        raise _fail(file, "generation_kwargs.temperature", "evaluation is greedy: only 0 (synthetic data is "
                    "sampled at params.yaml generate.temperature)")
    until = gen.get("until", DEFAULT_UNTIL)
    until = [until] if isinstance(until, str) else until
    if not isinstance(until, list) or not all(isinstance(u, str) and u for u in until):
        raise _fail(file, "generation_kwargs.until", f"must be a string or a list of non-empty strings (got {until!r})")
    max_gen_toks = gen.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)
    if not isinstance(max_gen_toks, int) or isinstance(max_gen_toks, bool) or max_gen_toks < 1:
        raise _fail(file, "generation_kwargs.max_gen_toks", f"must be a positive integer (got {max_gen_toks!r})")

    filters = _parse_filters(file, raw.get("filter_list"), output_type)
    metrics = _parse_metrics(file, raw.get("metric_list"), output_type)
    group, order = _parse_synthmix_metadata(file, raw.get("metadata"))
    return TaskSpec(
        file=file, name=name, output_type=output_type, dataset_path=raw["dataset_path"],
        dataset_name=raw.get("dataset_name"), dataset_kwargs=dict(kwargs), training_split=raw["training_split"],
        test_split=test_split, doc_to_text=doc_to_text, doc_to_target=doc_to_target, doc_to_choice=doc_to_choice,
        description=raw.get("description", ""), target_delimiter=raw.get("target_delimiter", " "),
        until=tuple(until), max_gen_toks=max_gen_toks, filters=filters, metrics=metrics, group=group, order=order,
    )


def _parse_filters(file: Path, value: Any, output_type: str) -> tuple[Filter, ...]:
    if value is None:
        return (Filter("none", (("take_first", {}),)),)  # lm-eval's default: the raw answer
    if output_type != "generate_until":
        raise _fail(file, "filter_list", "only for output_type generate_until")
    if not isinstance(value, list) or not value:
        raise _fail(file, "filter_list", f"must be a list of {{name, filter}} entries (got {value!r})")
    out = []
    for i, entry in enumerate(value):
        where = f"filter_list[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "filter"} or not isinstance(entry.get("filter"), list):
            raise _fail(file, where, f"must be {{name: ..., filter: [steps]}} (got {entry!r})")
        steps = []
        for j, step in enumerate(entry["filter"]):
            at = f"{where}.filter[{j}]"
            function = step.get("function") if isinstance(step, dict) else None
            if function not in FILTERS:
                raise _fail(file, at, f"function {function!r} is not supported (supported: {', '.join(FILTERS)})")
            args = {k: v for k, v in step.items() if k != "function"}
            bad = sorted(set(args) - FILTERS[function])
            if bad:
                raise _fail(file, f"{at}.{bad[0]}", f"not an argument of {function}")
            if function == "regex":
                try:
                    re.compile(args.get("regex_pattern", r"#### (\-?[0-9\.\,]+)"))
                except (re.error, TypeError) as err:
                    raise _fail(file, f"{at}.regex_pattern", f"not a regular expression: {err}") from None
                args.setdefault("regex_pattern", r"#### (\-?[0-9\.\,]+)")  # lm-eval's RegexFilter default
                if not isinstance(args.get("group_select", 0), int):
                    raise _fail(file, f"{at}.group_select", "must be an integer")
            steps.append((function, args))
        if not steps or steps[-1][0] != "take_first" or any(f == "take_first" for f, _ in steps[:-1]):
            raise _fail(file, f"{where}.filter", "must end with take_first, once (one answer per question)")
        out.append(Filter(str(entry.get("name", f"filter{i}")), tuple(steps)))
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        raise _fail(file, "filter_list", f"filter names repeat: {names}")
    return tuple(out)


def _parse_metrics(file: Path, value: Any, output_type: str) -> tuple[Metric, ...]:
    if value is None:  # lm-eval's defaults for the output type
        return (Metric("exact_match"),) if output_type == "generate_until" else (Metric("acc"),)
    if not isinstance(value, list) or not value:
        raise _fail(file, "metric_list", f"must be a list of {{metric: ...}} entries (got {value!r})")
    out = []
    for i, entry in enumerate(value):
        where = f"metric_list[{i}]"
        name = entry.get("metric") if isinstance(entry, dict) else None
        if name not in METRICS:
            raise _fail(file, f"{where}.metric", f"{name!r} is not supported (supported: {', '.join(METRICS)})")
        kind, allowed = METRICS[name]
        if kind != output_type:
            raise _fail(file, f"{where}.metric", f"{name} is a {kind} metric; this task is {output_type}")
        args = {k: v for k, v in entry.items() if k not in METRIC_BOOKKEEPING}
        bad = sorted(set(args) - allowed)
        if bad:
            raise _fail(file, f"{where}.{bad[0]}", f"not an argument of {name}" + (
                f" (supported: {', '.join(sorted(allowed))})" if allowed else ""))
        if entry.get("aggregation", AGGREGATION[name]) != AGGREGATION[name]:
            raise _fail(file, f"{where}.aggregation", f"only {AGGREGATION[name]!r} for {name}")
        if entry.get("higher_is_better", True) is not True:
            raise _fail(file, f"{where}.higher_is_better", f"{name} is higher-is-better")
        regexes = args.get("regexes_to_ignore", [])
        if not isinstance(regexes, list) or not all(isinstance(r, str) for r in regexes):
            raise _fail(file, f"{where}.regexes_to_ignore", "must be a list of regular expressions")
        for key in ("ignore_case", "ignore_punctuation", "ignore_numbers"):
            if not isinstance(args.get(key, False), bool):
                raise _fail(file, f"{where}.{key}", "must be true or false")
        out.append(Metric(name, args))
    if len({m.name for m in out}) != len(out):
        raise _fail(file, "metric_list", "each metric at most once")
    return tuple(out)


def _parse_synthmix_metadata(file: Path, metadata: Any) -> tuple[Any, int]:
    own = (metadata or {}).get("synthmix") if isinstance(metadata, dict) else None
    if own is None:
        return None, 100
    if not isinstance(own, dict) or set(own) - {"group", "order"}:
        raise _fail(file, "metadata.synthmix", f"only group and order (got {own!r})")
    group = own.get("group")
    if group not in (None, "reasoning", "grounded"):
        raise _fail(file, "metadata.synthmix.group", f"reasoning, grounded or null (got {group!r})")
    order = own.get("order", 100)
    if not isinstance(order, int):
        raise _fail(file, "metadata.synthmix.order", f"must be an integer (got {order!r})")
    return group, order


def index(task_paths: list[str]) -> dict[str, Path]:
    """task name -> its YAML file, over every *.yaml under `task_paths` (folders searched
    recursively, like lm-eval's --include_path; a path may also be one file, and one that does not
    exist holds nothing). Only the `task` key is read here: `parse_spec` checks the files of the
    tasks a study names."""
    found: dict[str, Path] = {}
    for entry in task_paths:
        root = Path(entry).expanduser()
        if not root.exists():  # nothing to index (a task it should have held is reported unknown)
            continue
        files = [root] if root.is_file() else sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")])
        for file in files:
            stat = file.stat()
            name = _task_name(file, stat.st_mtime_ns, stat.st_size)
            if isinstance(name, str):
                if name in found and found[name] != file:
                    raise TaskYamlError(f"task_paths: task {name!r} is defined twice: {found[name]} and {file}")
                found[name] = file
    return found


@functools.lru_cache(maxsize=65536)
def _task_name(file: Path, mtime_ns: int, size: int) -> Any:
    """A YAML's `task` value, read once per version of the file (params validation indexes
    task_paths several times; lm-eval's own tasks folder holds thousands of YAMLs)."""
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError:  # e.g. !function tags: parse_spec reports them if the study names the task
        return _name_from_text(file)
    return raw.get("task") if isinstance(raw, dict) else None


def _name_from_text(file: Path) -> str | None:
    m = re.search(r"^task:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(#.*)?$", file.read_text(encoding="utf-8"), re.MULTILINE)
    return m.group(1) if m else None
