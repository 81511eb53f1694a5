"""Task families from lm-evaluation-harness task YAMLs: your own task, no Python.

params.yaml `task_paths` lists folders (or files) of task YAMLs, like lm-eval's `--include_path`;
`tasks:` names them beside the built-in families. `synthmix.tasks.yaml_spec` reads and checks a
YAML (the keys supported, each with lm-eval's meaning); `YamlTask` runs it: its dataset through
`datasets`, its templates as lm-eval renders them, its filters and metrics as lm-eval computes them.
A YAML task gets everything a built-in one gets: answers-mode generation, great-expectations
validation, mixing, training, evaluation with ECE and diversity, synthetic accuracy and the report.
"""

from __future__ import annotations

import ast
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from synthmix.tasks.base import Example, Scored, TaskFamily
from synthmix.tasks.yaml_spec import Metric, TaskSpec, TaskYamlError

#: generation budget of a multiple-choice task's sampled answers (an option, then EOS)
MC_ANSWER_TOKENS = 32


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

