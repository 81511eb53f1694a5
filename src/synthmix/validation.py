"""A great-expectations suite run over every generated (synthetic) sample set.

`validate_samples(task, samples, test_prompts)` builds a DataFrame of the samples (one row per
sample: ``id``, ``prompt``, ``completion``, ``completion_chars``, one boolean column per key of
`task.checks(sample)`, ``leaked`` and the dedup key ``text``) and validates it in a GX 1.x
ephemeral Data Context against:

==================== ===================================================== ==========
name                 expectation                                           level
==================== ===================================================== ==========
prompt_not_null      ExpectColumnValuesToNotBeNull(prompt)                 row
completion_not_null  ExpectColumnValuesToNotBeNull(completion)             row
prompt_length        ExpectColumnValueLengthsToBeBetween(prompt,           row
                     *bounds["prompt"])
completion_length    ExpectColumnValueLengthsToBeBetween(completion,       row
                     *bounds["completion"])
check:<key>          ExpectColumnValuesToBeInSet(<key>, [True])            row
not_leaked           ExpectColumnValuesToBeInSet(leaked, [False])          row
duplicate_rate       ExpectColumnProportionOfUniqueValuesToBeBetween(      table
                     text, 1 - max_duplicate_rate, 1)
not_empty            ExpectTableRowCountToBeBetween(min_value=1)           table
==================== ===================================================== ==========

(``text`` is prompt + NUL + completion. An empty set fails ``not_empty`` and also
``duplicate_rate``: GX reports a unique proportion of 0 for zero rows.)

The checks and the length bounds follow the data's source (`TaskFamily.source`, params.yaml
`prepare.source`). Built-in data: each family's exact prompt format, and `bounds` are its
`prompt_chars` (1-4000) and `completion_chars`. Hub data (the real benchmarks): format-neutral
checks, and bounds measured on the external train split's gold texts with headroom
(`TaskFamily.length_bounds`), so every gold example passes and a malformed generation still fails.

A sample is *malformed* when it fails at least one row-level expectation. Duplicates are not
malformed: each copy of a duplicated sample is a well-formed sample on its own, and which copy
is "the duplicate" is arbitrary, so the duplicate rate is judged on the whole set (the table
expectation) and the second and later copies are listed in `ValidationReport.duplicate_ids`.

GX start-up (import + context) costs ~2 s; the context is therefore created once per process
(`SampleValidator`, reused by `validate_samples`) and every call only builds a new batch.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from synthmix import paths
from synthmix.params import Params
from synthmix.records import read_jsonl, write_json, write_jsonl

if TYPE_CHECKING:
    import pandas as pd

    from synthmix.tasks.base import Example, TaskFamily

#: characters of prompt/completion kept in `ValidationReport.failing_examples`
EXCERPT_CHARS = 300
#: columns the suite builds itself; a task check may not use these names
RESERVED_COLUMNS = ("id", "prompt", "completion", "completion_chars", "leaked", "text")


class MalformedSamplesError(RuntimeError):
    """A sample set failed its suite and the policy is ``validate.on_invalid: fail``."""


@dataclass
class ValidationReport:
    """The outcome of one suite run, as plain JSON-able values."""

    task: str
    #: every expectation (row and table level) met
    success: bool
    n_samples: int
    #: samples failing at least one row-level expectation
    n_malformed: int
    #: per expectation: name, type, column, kwargs, success, unexpected_count,
    #: unexpected_percent, observed_value, exception
    expectations: list[dict[str, Any]]
    #: up to `max_examples` malformed samples: id, failed (expectation names), prompt, completion
    failing_examples: list[dict[str, Any]]
    malformed_ids: list[str]
    #: second and later copies of a (prompt, completion) pair (not counted as malformed)
    duplicate_ids: list[str] = field(default_factory=list)
    #: expectation names that failed
    failed_expectations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _excerpt(value: Any) -> Any:
    if isinstance(value, str) and len(value) > EXCERPT_CHARS:
        return value[:EXCERPT_CHARS] + "..."
    return value


def _plain(value: Any) -> Any:
    """numpy scalars / containers -> built-in JSON-able values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _exception_message(info: Any) -> str | None:
    """The message of a GX `exception_info` (flat, or keyed by metric id), None if none raised."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        infos = [info]
    else:
        infos = [v for v in info.values() if isinstance(v, dict)]
    messages = [str(i.get("exception_message")) for i in infos if i.get("raised_exception")]
    return "; ".join(messages) or None


def _sample_id(sample: Example, row: int) -> str:
    """A sample's id as the report names it (``<row i>`` for a sample without one)."""
    return str(sample["id"]) if sample.get("id") is not None else f"<row {row}>"


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


def _frame(task: TaskFamily, samples: list[Example], test_prompts: Iterable[str]) -> pd.DataFrame:
    import pandas as pd

    leaked_set = {p.strip() for p in test_prompts if isinstance(p, str)}
    checks = [task.checks(s) for s in samples]
    keys: list[str] = list(dict.fromkeys(k for c in checks for k in c))
    clash = [k for k in keys if k in RESERVED_COLUMNS]
    if clash:
        raise ValueError(
            f"task {task.name!r}: check name(s) {clash} clash with the suite's own columns "
            f"{RESERVED_COLUMNS}"
        )
    rows = []
    for i, (sample, flags) in enumerate(zip(samples, checks)):
        prompt, completion = _text(sample.get("prompt")), _text(sample.get("completion"))
        rows.append(
            {
                "id": _sample_id(sample, i),
                "prompt": prompt,
                "completion": completion,
                "completion_chars": len(completion) if completion is not None else 0,
                # a check missing from one sample's flags counts as failed for that sample
                **{k: bool(flags.get(k, False)) for k in keys},
                "leaked": prompt is not None and prompt.strip() in leaked_set,
                "text": f"{prompt}\x00{completion}",
            }
        )
    columns = ["id", "prompt", "completion", "completion_chars", *keys, "leaked", "text"]
    return pd.DataFrame(rows, columns=columns)


class SampleValidator:
    """Holds one GX ephemeral Data Context (with a pandas data source, a dataframe asset and a
    whole-dataframe batch definition) and validates sample sets against it.

    Creating it imports great_expectations (slow); reuse one instance per process, as
    `validate_samples` does.
    """

    def __init__(self) -> None:
        # GX 1.24 has no analytics module left; the variable is what older 1.x read (harmless).
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx, self._gxe = gx, gxe
        self.context = gx.get_context(mode="ephemeral")
        # The (v0) Validator GX runs underneath shows "Calculating Metrics" tqdm bars unless
        # the context's progress_bars variable turns them off.
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = self.context.data_sources.add_pandas("synthmix").add_dataframe_asset("samples")
        self._batch_definition = asset.add_batch_definition_whole_dataframe("whole")

    def _suite(
        self, task: TaskFamily, check_keys: list[str], max_duplicate_rate: float,
        bounds: dict[str, tuple[int, int]],
    ) -> tuple[Any, dict[str, str]]:
        """The suite, and each expectation's name keyed by ``<GX type>:<column>``."""
        gxe = self._gxe
        lengths = gxe.ExpectColumnValueLengthsToBeBetween
        named: list[tuple[str, Any]] = [
            ("prompt_not_null", gxe.ExpectColumnValuesToNotBeNull(column="prompt")),
            ("completion_not_null", gxe.ExpectColumnValuesToNotBeNull(column="completion")),
            ("prompt_length", lengths(column="prompt", min_value=bounds["prompt"][0], max_value=bounds["prompt"][1])),
            ("completion_length", lengths(column="completion", min_value=bounds["completion"][0],
                                          max_value=bounds["completion"][1])),
            *(
                (f"check:{k}", gxe.ExpectColumnValuesToBeInSet(column=k, value_set=[True]))
                for k in check_keys
            ),
            ("not_leaked", gxe.ExpectColumnValuesToBeInSet(column="leaked", value_set=[False])),
            ("duplicate_rate", gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(
                column="text", min_value=1.0 - max_duplicate_rate, max_value=1.0)),
            ("not_empty", gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        ]
        suite = self._gx.ExpectationSuite(name=f"synthmix-{task.name}")
        names = {}
        for name, expectation in named:
            suite.add_expectation(expectation)
            names[f"{expectation.expectation_type}:{getattr(expectation, 'column', None)}"] = name
        return suite, names

    def validate(
        self,
        task: TaskFamily,
        samples: list[Example],
        test_prompts: Iterable[str],
        *,
        max_duplicate_rate: float = 0.5,
        max_examples: int = 20,
        bounds: dict[str, tuple[int, int]] | None = None,
    ) -> ValidationReport:
        """Run the suite over `samples`; see the module docstring for what is expected.

        `bounds`: {"prompt": (lo, hi), "completion": (lo, hi)} in characters, inclusive; None: the
        task's `length_bounds()` (built-in data; hub data needs them measured on its train split)."""
        if not 0.0 <= max_duplicate_rate <= 1.0:
            raise ValueError(f"max_duplicate_rate must be in [0, 1], got {max_duplicate_rate}")
        df = _frame(task, samples, test_prompts)
        check_keys = [c for c in df.columns if c not in RESERVED_COLUMNS]
        suite, names = self._suite(task, check_keys, max_duplicate_rate, bounds or task.length_bounds())
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(
            suite,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]},
        )

        expectations: list[dict[str, Any]] = []
        failed_by_id: dict[str, list[str]] = {}
        for r in result.results:
            cfg = r.expectation_config
            kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "column")}
            name = names.get(f"{cfg.type}:{cfg.kwargs.get('column')}", cfg.type)
            res = r.result or {}
            expectations.append(
                _plain(
                    {
                        "name": name,
                        "type": cfg.type,
                        "column": cfg.kwargs.get("column"),
                        "kwargs": kwargs,
                        "success": bool(r.success),
                        "unexpected_count": res.get("unexpected_count"),
                        "unexpected_percent": res.get("unexpected_percent"),
                        "observed_value": res.get("observed_value"),
                        "exception": _exception_message(r.exception_info),
                    }
                )
            )
            for row in res.get("unexpected_index_list") or []:
                failed = failed_by_id.setdefault(str(row["id"]), [])
                if name not in failed:
                    failed.append(name)

        order = {name: k for k, name in enumerate(names.values())}
        expectations.sort(key=lambda e: order.get(e["name"], len(order)))  # GX reorders them
        ids = df["id"].tolist()
        malformed = list(dict.fromkeys(i for i in ids if i in failed_by_id))
        first_row = {i: row for row, i in reversed(list(enumerate(ids)))}
        failing_examples = [
            {
                "id": i,
                "failed": failed_by_id[i],
                "prompt": _excerpt(samples[first_row[i]].get("prompt")),
                "completion": _excerpt(samples[first_row[i]].get("completion")),
            }
            for i in malformed[:max_examples]
        ]
        return ValidationReport(
            task=task.name,
            success=bool(result.success),
            n_samples=len(df),
            n_malformed=len(malformed),
            expectations=expectations,
            failing_examples=_plain(failing_examples),
            malformed_ids=malformed,
            duplicate_ids=df.loc[df["text"].duplicated(), "id"].tolist(),
            failed_expectations=[e["name"] for e in expectations if not e["success"]],
        )


_default: SampleValidator | None = None
_default_lock = threading.Lock()


def default_validator() -> SampleValidator:
    """The process-wide `SampleValidator` (created, with its GX context, on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SampleValidator()
        return _default


def validate_samples(
    task: TaskFamily,
    samples: list[Example],
    test_prompts: Iterable[str],
    *,
    max_duplicate_rate: float = 0.5,
    max_examples: int = 20,
    bounds: dict[str, tuple[int, int]] | None = None,
) -> ValidationReport:
    """Validate one task's generated samples with the process-wide GX context.

    `test_prompts` are the task's held-out test prompts: a sample whose prompt equals one of them
    (after `strip()`) is *leaked*. At most `max_duplicate_rate` of the samples may be repeats of
    an earlier (prompt, completion) pair. `bounds`: see `SampleValidator.validate`.
    """
    return default_validator().validate(
        task, samples, test_prompts, max_duplicate_rate=max_duplicate_rate, max_examples=max_examples,
        bounds=bounds,
    )


def apply_policy(
    samples: list[Example],
    report: ValidationReport,
    on_invalid: Literal["keep", "drop", "fail"],
) -> list[Example]:
    """What the validate stage passes on to mixing, given the suite's verdict.

    - ``keep`` (the paper: no filtering): every sample.
    - ``drop``: every sample but the malformed ones (duplicates are kept: they are well-formed,
      and how often the model repeats itself is part of what the study measures).
    - ``fail``: every sample if the suite passed, else `MalformedSamplesError` (any failed
      expectation counts, the table-level duplicate rate included).
    """
    if on_invalid == "keep":
        return list(samples)
    if on_invalid == "drop":
        bad = set(report.malformed_ids)
        return [s for i, s in enumerate(samples) if _sample_id(s, i) not in bad]
    if on_invalid == "fail":
        if not report.success:
            first = ", ".join(report.malformed_ids[:5]) or "none (no row-level failure)"
            more = " ..." if len(report.malformed_ids) > 5 else ""
            raise MalformedSamplesError(
                f"task {report.task!r}: {report.n_malformed} of {report.n_samples} synthetic samples "
                f"are malformed; failed expectations: {', '.join(report.failed_expectations)}; "
                f"first failing ids: {first}{more}. Set validate.on_invalid to 'drop' or 'keep' to go on."
            )
        return list(samples)
    raise ValueError(f"on_invalid must be 'keep', 'drop' or 'fail', got {on_invalid!r}")


def run(params: Params, iteration: int) -> int:
    """Stage `validate`: check every task's raw synthetic set, apply `validate.on_invalid`.

    Writes the full report (per-expectation statistics, failing examples) next to the validated
    data and the headline numbers to metrics/validation/iter<N>.json; with `fail`, a set with
    malformed samples stops the stage (exit 1) and its validated file is not written. The raw
    set is never modified.

    The checks and length bounds follow `prepare.source`: with hub data, the families' format-neutral
    checks and bounds measured on the external train split (module docstring).
    """
    import json

    from synthmix import quality
    cfg = params.validation
    full: dict[str, Any] = {}
    headline: dict[str, Any] = {}
    failures: list[str] = []
    meta_path = paths.synthetic_meta(iteration)
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    for name in params.tasks:
        task = params.task(name)  # its source's rules; code judged as evaluate judges it (evaluate.code_*)
        samples = read_jsonl(paths.synthetic_raw(iteration, name))
        test_prompts = [row["prompt"] for row in read_jsonl(paths.external(name, "test"))]
        external = read_jsonl(paths.external(name, "train"))
        gold = external if task.source != "builtin" else ()  # hub and YAML data: bounds from the gold
        report = validate_samples(task, samples, test_prompts, max_duplicate_rate=cfg.max_duplicate_rate,
                                  bounds=task.length_bounds(gold))
        verified = quality.verify(task, samples, external, params.generate.mode)
        full[name] = report.to_dict()
        headline[name] = {
            "success": report.success,
            "samples": report.n_samples,
            "malformed": report.n_malformed,
            "malformed_rate": report.n_malformed / max(report.n_samples, 1),
            "duplicates": len(report.duplicate_ids),
            "verified": sum(verified),
            # right against the source prompt's gold answer (answers) / parsed and well-formed (instances)
            "synthetic_accuracy": sum(verified) / max(len(samples), 1),
        }
        try:
            kept = apply_policy(samples, report, cfg.on_invalid)
        except MalformedSamplesError as err:
            failures.append(str(err))
            continue
        if cfg.filter == "verified":
            good = {id(s) for s, ok in zip(samples, verified) if ok}  # apply_policy keeps the objects
            kept = [s for s in kept if id(s) in good]
        kept, removed = quality.dedup(kept, cfg.dedup, seed=params.seed)
        full[name]["near_duplicate_ids"] = removed
        write_jsonl(paths.synthetic_valid(iteration, name), kept)
        headline[name].update(kept=len(kept), kept_rate=len(kept) / max(len(samples), 1), dedup_removed=len(removed))
        draws = ((meta.get("tasks") or {}).get(name) or {}).get("draws")
        if draws is not None:  # rejection sampling (generate.max_attempts): what one kept sample cost
            headline[name]["draws_per_kept"] = draws / max(len(kept), 1)
        settings = {"filter": cfg.filter, "dedup": cfg.dedup, "on_invalid": cfg.on_invalid}
        paths.synthetic_card(iteration, name).write_text(
            quality.data_card(name, iteration, meta, settings, headline[name], report.expectations))
        print(f"iter{iteration}/{name}: {report.n_malformed}/{report.n_samples} malformed, "
              f"{len(report.duplicate_ids)} duplicates, synthetic accuracy {headline[name]['synthetic_accuracy']:.3f}, "
              f"kept {len(kept)} ({cfg.on_invalid}, filter {cfg.filter}, {len(removed)} near-duplicates removed)")
    write_json(paths.validation_details(iteration), full)
    write_json(paths.validation_report(iteration), headline)
    if failures:
        print("\n\n".join(failures), file=sys.stderr)
        print(f"full report: {paths.validation_details(iteration)}", file=sys.stderr)
        return 1
    return 0
