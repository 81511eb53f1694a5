"""Task families from lm-evaluation-harness task YAMLs: your own task, no Python.

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

import ast
import functools
import os
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from synthmix.tasks.base import Example, Scored, TaskFamily

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
#: generation budget of a multiple-choice task's sampled answers (an option, then EOS)
MC_ANSWER_TOKENS = 32
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
    raw: dict[str, Any]
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
        file=file, raw=raw, name=name, output_type=output_type, dataset_path=raw["dataset_path"],
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


# ----- templates (lm_eval.utils.apply_template and ConfigurableTask.doc_to_*) -------------------------

def _environment():
    from jinja2 import BaseLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # lm-eval's Environment, sandboxed: a teammate's template reads the row and nothing else
    env = ImmutableSandboxedEnvironment(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["regex_replace"] = lambda s, pattern, repl, count=0: re.sub(pattern, repl, s, count=count)
    return env


class _Renderer:
    """doc_to_text / doc_to_target / doc_to_choice of one task, as lm-eval evaluates them."""

    def __init__(self, spec: TaskSpec, features: list[str]):
        self.spec, self.features = spec, set(features)
        self.env = _environment()
        self._compiled: dict[str, Any] = {}

    def _render(self, template: str, doc: dict[str, Any]) -> str:
        if template not in self._compiled:
            self._compiled[template] = self.env.from_string(template)
        return self._compiled[template].render(**doc)

    def text(self, doc: dict[str, Any]) -> str:
        value = self.spec.doc_to_text
        if value in self.features:
            return doc[value]
        return self._render(value, doc)

    def target(self, doc: dict[str, Any]) -> Any:
        value = self.spec.doc_to_target
        if isinstance(value, int):
            return value
        if value in self.features:
            return doc[value]
        rendered = self._render(value, doc)
        if rendered.isdigit() and self.spec.doc_to_choice is not None:
            return ast.literal_eval(rendered)
        if len(rendered) >= 2 and rendered[0] == "[" and rendered[-1] == "]":
            try:
                return ast.literal_eval(rendered)
            except (SyntaxError, ValueError):
                return rendered
        return rendered

    def choices(self, doc: dict[str, Any]) -> list[str]:
        value = self.spec.doc_to_choice
        if isinstance(value, list):
            return value
        if value in self.features:
            return doc[value]
        return ast.literal_eval(self._render(value, doc))


# ----- metrics (lm_eval.api.metrics) ---------------------------------------------------------------

def exact_match(prediction: str, reference: str, regexes_to_ignore: list[str] = (), ignore_case: bool = False,
                ignore_punctuation: bool = False, ignore_numbers: bool = False) -> float:
    """lm-eval's `exact_match_hf_evaluate` for one pair: the regexes removed from both, then case,
    punctuation and digits as asked, then string equality."""
    for pattern in regexes_to_ignore:
        prediction, reference = re.sub(pattern, "", prediction), re.sub(pattern, "", reference)
    if ignore_case:
        prediction, reference = prediction.lower(), reference.lower()
    if ignore_punctuation:
        table = str.maketrans("", "", string.punctuation)
        prediction, reference = prediction.translate(table), reference.translate(table)
    if ignore_numbers:
        table = str.maketrans("", "", string.digits)
        prediction, reference = prediction.translate(table), reference.translate(table)
    return float(prediction == reference)


def binary_f1(golds: list[int], preds: list[int]) -> float:
    """F1 of the positive class (label 1) over gold and predicted choice indices: lm-eval's `f1`
    aggregation (sklearn's f1_score, average='binary'); 0 when nothing is predicted or gold positive."""
    tp = sum(g == 1 and p == 1 for g, p in zip(golds, preds))
    fp = sum(g != 1 and p == 1 for g, p in zip(golds, preds))
    fn = sum(g == 1 and p != 1 for g, p in zip(golds, preds))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


# ----- the family ------------------------------------------------------------------------------------

class YamlTask(TaskFamily):
    """A task family defined by an lm-evaluation-harness task YAML (see the module docstring)."""

    source = "yaml"
    # no bounds of its own: `length_bounds` widens these to the train split's gold lengths (with
    # LENGTH_HEADROOM), so a sample is well-formed when it is as long as the data says, no longer
    completion_chars = (1, 1)
    prompt_chars = (1, 1)

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.name = spec.name  # type: ignore[misc]  (instance, not class, attributes: one class, many tasks)
        self.kind = "choice" if spec.output_type == "multiple_choice" else "generate"  # type: ignore[misc]
        self.score_name = spec.metrics[0].name  # type: ignore[misc]
        # generate_until: max_gen_toks; multiple choice has no generation_kwargs in lm-eval, yet its
        # synthetic answers and diversity samples are generated: MC_ANSWER_TOKENS, or max_new_tokens.<task>
        self.max_new_tokens = spec.max_gen_toks if self.kind == "generate" else MC_ANSWER_TOKENS  # type: ignore[misc]
        self.order = spec.order  # type: ignore[misc]
        self.group = spec.group  # type: ignore[misc]
        self.choice_reduction = "sum"  # type: ignore[misc]  (lm-eval's acc: summed log-likelihood)

    # ----- data ---------------------------------------------------------------------------------------
    def load(self, caps: dict[str, int | None], seed: int) -> dict[str, Any]:
        """{split: SplitData} of the YAML's training and test splits (train rows repeating a test
        prompt dropped, each split capped to a seeded sample), as `prepare` writes them."""
        from synthmix.tasks.hub import SplitData, sample

        out: dict[str, Any] = {}
        test_prompts: set[str] = set()
        for split, name in (("test", self.spec.test_split), ("train", self.spec.training_split)):
            rows, info = self._rows(name)
            examples = self.examples(rows, split, info["features"])
            dropped = 0
            if split == "test":
                test_prompts = {ex["prompt"] for ex in examples}
            else:
                kept = [ex for ex in examples if ex["prompt"] not in test_prompts]
                dropped, examples = len(examples) - len(kept), kept
            if not examples:
                raise TaskYamlError(f"{self.spec.file}: {split} split {name!r} has no usable rows")
            chosen = sample(examples, caps[split], key=f"prepare:yaml:{self.name}:{split}:{seed}")
            out[split] = SplitData(chosen, {
                "path": self.spec.dataset_path, "name": self.spec.dataset_name, "split": name,
                "yaml": str(self.spec.file), **info, "rows": len(rows), "skipped": 0,
                "dropped_test_prompt_overlap": dropped, "available": len(examples), "cap": caps[split],
                "examples": len(chosen),
            })
        return {"train": out["train"], "test": out["test"]}

    def local_files(self) -> list[str]:
        """The local files `dataset_kwargs.data_files` names (glob patterns and URLs left out)."""
        files = self.spec.dataset_kwargs.get("data_files")
        groups = [files] if isinstance(files, str) else list(files.values()) if isinstance(files, dict) else files or []
        return [one for group in groups for one in ([group] if isinstance(group, str) else group)
                if isinstance(one, str) and "://" not in one and not any(c in one for c in "*?[")]

    def _rows(self, split: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        import datasets

        where = f"{self.spec.file}: dataset {self.spec.dataset_path!r} split {split!r}"
        for one in self.local_files():
            if not Path(one).exists():
                raise TaskYamlError(f"{where}: dataset_kwargs.data_files: {one} does not exist "
                                    f"(relative paths are read from the project root, {Path.cwd()})")
        try:
            ds = datasets.load_dataset(self.spec.dataset_path, self.spec.dataset_name, split=split,
                                       **self.spec.dataset_kwargs)
        except ConnectionError as err:
            raise TaskYamlError(f"{where}: not cached and the hub cannot be reached; online, run prepare once with "
                                f"HF_DATASETS_OFFLINE=0 HF_HUB_OFFLINE=0 ({err})") from None
        except (FileNotFoundError, ValueError, KeyError) as err:
            raise TaskYamlError(f"{where} cannot be loaded: {type(err).__name__}: {err}") from None
        return ds.to_list(), {"fingerprint": ds._fingerprint, "features": sorted(ds.column_names),
                              "loaded_from": "datasets"}

    def examples(self, docs: list[dict[str, Any]], split: str, features: list[str]) -> list[Example]:
        """Each doc as a synthmix example: prompt = description + doc_to_text, completion =
        target_delimiter + the gold answer; gold fields ``targets`` (generate_until) or ``choices``
        and ``label`` (multiple_choice). A row the templates cannot render stops with its index."""
        from jinja2 import TemplateError

        render = _Renderer(self.spec, features)
        out = []
        for i, doc in enumerate(docs):
            try:
                out.append(self._example(render, doc, split, i))
            except (TemplateError, KeyError, IndexError, TypeError, ValueError, SyntaxError) as err:
                raise TaskYamlError(f"{self.spec.file}: {split} row {i} ({self._shown(doc)}): "
                                    f"{type(err).__name__}: {err}") from None
        return out

    @staticmethod
    def _shown(doc: dict[str, Any]) -> str:
        text = repr(doc)
        return text if len(text) < 160 else text[:157] + "..."

    def _example(self, render: _Renderer, doc: dict[str, Any], split: str, i: int) -> Example:
        prompt = self.spec.description + str(render.text(doc))
        target = render.target(doc)
        delim = self.spec.target_delimiter
        row: Example = {"id": f"{self.name}-{split}-{i:06d}", "prompt": prompt}
        if self.kind == "choice":
            choices = [str(c) for c in render.choices(doc)]
            if isinstance(target, str):
                if target not in choices:
                    raise ValueError(f"doc_to_target {target!r} is not one of the choices {choices}")
                target = choices.index(target)
            if not isinstance(target, int) or not 0 <= target < len(choices):
                raise ValueError(f"doc_to_target {target!r} is not a choice index 0..{len(choices) - 1}")
            return {**row, "completion": delim + choices[target], "choices": choices, "label": target}
        if self.spec.doc_to_choice is not None:
            target = render.choices(doc)[target]
        targets = [str(t) for t in target] if isinstance(target, list) else [str(target)]
        if not targets:
            raise ValueError("doc_to_target gave no answer")
        return {**row, "completion": delim + targets[0], "targets": targets}

    def build(self, split: Literal["train", "test"], n: int, seed: int) -> list[Example]:
        """The YAML's `split` examples, capped at `n` (seeded): what `prepare` writes."""
        return self.load({"train": n, "test": n}, seed)[split].examples

    # ----- model I/O ----------------------------------------------------------------------------------
    def choices(self, example: Example) -> list[str]:
        if self.kind != "choice":
            return super().choices(example)
        return [self.spec.target_delimiter + c for c in example["choices"]]

    def stop(self, text: str) -> str:
        """The answer cut at the first `generation_kwargs.until` string, as lm-eval stops generating."""
        if self.kind != "generate":
            return text
        cut = min((k for k in (text.find(u) for u in self.spec.until) if k >= 0), default=len(text))
        return text[:cut]

    def extract(self, text: str) -> Any:
        """generate_until: the first filter's answer (None when its regex found nothing);
        multiple_choice: the text with the delimiter stripped."""
        if self.kind == "choice":
            return text.strip() or None
        pipeline = self.spec.filters[0]
        value = pipeline.apply(self.stop(text))
        return None if pipeline.fallback is not None and value == pipeline.fallback else value

    # ----- scoring ------------------------------------------------------------------------------------
    def _metric(self, metric: Metric, prediction: str, golds: list[str]) -> float:
        # lm-eval: a list target is right when any gold is (exact_match over each)
        return max(exact_match(prediction, g, **metric.kwargs) for g in golds)

    def score(self, examples: list[Example], completions: list[str]) -> list[Scored]:
        """generate_until: every filter x metric of lm-eval on the answer cut at `until`; the first
        pair is the verdict. multiple_choice: whether the text is the gold choice."""
        out = []
        for ex, text in zip(examples, completions):
            if self.kind == "choice":
                options = self.choices(ex)
                picked = options.index(text) if text in options else None
                out.append(Scored(float(picked == ex["label"]), picked, {}))
                continue
            text = self.stop(text)
            extra: dict[str, Any] = {}
            verdict, extracted = 0.0, None
            for f_index, pipeline in enumerate(self.spec.filters):
                value = pipeline.apply(text)
                for m_index, metric in enumerate(self.spec.metrics):
                    value_score = self._metric(metric, value, ex["targets"])
                    if f_index == 0 and m_index == 0:
                        verdict, extracted = value_score, value
                    else:
                        extra[f"{metric.name},{pipeline.name}"] = value_score
            out.append(Scored(verdict, extracted, extra))
        return out

    def summarize(self, examples: list[Example], scored: list[Scored]) -> dict[str, float]:
        """The headline metric under its plain name, every metric under `<metric>,<filter>` too."""
        n = max(len(scored), 1)
        if self.kind == "choice":
            golds, picks = [ex["label"] for ex in examples], [s.extracted for s in scored]
            out = {}
            for metric in self.spec.metrics:
                if metric.name == "acc":
                    out["acc"] = sum(s.correct for s in scored) / n
                else:
                    out["f1"] = binary_f1(golds, [-1 if p is None else p for p in picks])
            return out
        out = {self.score_name: sum(s.correct for s in scored) / n}
        first = self.spec.filters[0].name
        for pipeline in self.spec.filters:
            for metric in self.spec.metrics:
                key = f"{metric.name},{pipeline.name}"
                if pipeline.name == first and metric is self.spec.metrics[0]:
                    out[key] = out[self.score_name]
                else:
                    out[key] = sum(s.extra[key] for s in scored) / n
        return out

    def trivial_baseline(self, train: list[Example], test: list[Example]) -> dict[str, Any]:
        """generate_until: the most frequent train answer, scored as the model is; multiple_choice: the
        better of chance and always picking the most frequent train label."""
        if not test:
            return {"name": "no test data", "score": 0.0}
        if self.kind == "choice":
            chance = sum(1 / len(ex["choices"]) for ex in test) / len(test)
            label = Counter(ex["label"] for ex in train).most_common(1)[0][0]
            majority = sum(ex["label"] == label for ex in test) / len(test)
            if self.score_name == "f1":
                return {"name": f"always choice {label}", "score": binary_f1([ex["label"] for ex in test], [label] * len(test))}
            return ({"name": "chance", "score": chance} if chance >= majority
                    else {"name": f"always choice {label}", "score": majority})
        answer = Counter(ex["completion"] for ex in train).most_common(1)[0][0]
        hits = self.score(test, [answer] * len(test))
        return {"name": f"most frequent train answer ({answer.strip()[:40]!r})",
                "score": sum(s.correct for s in hits) / len(test)}

    # ----- synthetic data -------------------------------------------------------------------------------
    def parse_instance(self, text: str) -> Example | None:
        """Instances mode (whole new examples) is not supported for YAML tasks: params validation
        refuses it, since a generated example's gold fields cannot be read back from a template."""
        return None

    # ----- validation -----------------------------------------------------------------------------------
    def checks(self, example: Example) -> dict[str, bool]:
        """generate_until: a non-empty answer that the first filter can read (its regex matches);
        multiple_choice: the answer is one of the example's choices."""
        completion = example.get("completion") or ""
        if self.kind == "choice":
            options = self.choices(example) if example.get("choices") else []
            return {"non_empty_answer": bool(completion.strip()), "valid_choice": completion in options}
        return {"non_empty_answer": bool(self.stop(completion).strip()),
                "answer_passes_filter": self.extract(completion) is not None}


def load_specs(task_paths: list[str], names: list[str]) -> dict[str, TaskSpec]:
    """The checked specs of the YAML tasks among `names` (names not found under `task_paths` are left
    for the caller to report)."""
    found = index(task_paths)
    return {name: parse_spec(found[name]) for name in names if name in found}
