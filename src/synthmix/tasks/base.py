"""What a task family is: its data, prompt format, answer extraction, scoring and validity rules.

Generic stages (train, generate, validate, mix, evaluate) only ever talk to a `TaskFamily`; they
never branch on a task's name. Adding a task family means adding one module under `tasks/` that
subclasses `TaskFamily` and registers itself with `@register`.

Every example is a flat JSON-serialisable dict with at least:

- ``id``: unique within the split (str)
- ``prompt``: the text the model is conditioned on; ends where the model's answer begins
- ``completion``: the gold continuation the model is trained to produce (it starts with a space,
  the EOS token is appended by the training code, never stored here)

plus the task's own gold fields (``label``/``choices``, ``answer``, ``answers``, ``tests``...).
The same schema holds for synthetic examples: they carry a generated ``completion`` (``answers``
mode) or a whole generated example (``instances`` mode), plus ``origin`` provenance fields added
by the generate stage.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from synthmix.params import Params

Example = dict[str, Any]


@dataclass(frozen=True)
class Scored:
    """One example's verdict.

    ``correct`` is the binary outcome used for accuracy and ECE (1.0 or 0.0); ``extracted`` is the
    answer pulled out of the model's text (``None`` when nothing could be extracted); ``extra``
    holds per-example sub-metrics a task reports (e.g. reading's ``f1`` and ``has_answer``).
    """

    correct: float
    extracted: Any
    extra: dict[str, Any]


class TaskFamily(ABC):
    """A task family: one benchmark's worth of behaviour, independent of the model."""

    #: registry key, used in params.yaml (`tasks: [...]`) and in every path (`models/iter0/<name>`)
    name: ClassVar[str]
    #: "choice": scored by comparing the log-likelihood of each of `choices(example)`;
    #: "generate": scored by extracting an answer from the model's greedy completion
    kind: ClassVar[Literal["choice", "generate"]]
    #: the headline metric's key in `summarize()`'s result (e.g. "accuracy", "exact_match", "pass@1")
    score_name: ClassVar[str]
    #: generation budget for greedy answers and for synthetic samples, in model tokens, sized for the
    #: built-in data (params.yaml `max_new_tokens.<task>` overrides it, e.g. for the real benchmarks)
    max_new_tokens: ClassVar[int]
    #: whose examples the validity rules (`checks`, `length_bounds`) judge: "builtin", the family's
    #: own generated data, held to its exact prompt format and `completion_chars`; or "hub", real
    #: benchmark rows mapped by `synthmix.tasks.hub`, held to format-neutral rules (the answer can be
    #: extracted, the code parses...) and to length bounds measured on the external train split.
    #: `get_task(name, source=...)` sets it (params.yaml `prepare.source`).
    source: Literal["builtin", "hub", "yaml"] = "builtin"

    # ----- what the rest of synthmix knows about the family (one place per task) ---------------
    #: position in tables, plots and reports (lower first); tasks of equal order sort by name
    order: ClassVar[int] = 100
    #: the report's finding 4 compares "reasoning" tasks (math, code) with "grounded" ones
    #: (factual, reading); None: the task is in neither group
    group: ClassVar[Literal["reasoning", "grounded"] | None] = None
    #: the paper's degradation for this kind of task (protocol.md, finding 4: math -20%, code -22%,
    #: factual -13%, reading -5%), shown beside ours in the report's task sensitivity (None: none)
    paper_sensitivity: ClassVar[float | None] = None
    #: `prepare.source: hub`: per split ("train", "test"), the dataset `datasets.load_dataset`
    #: reads and the adapter mapping its rows (`format`, synthmix.tasks.hub.FORMATS): the defaults
    #: that params.yaml `prepare.hub.<task>` overrides key by key. None: the family has no hub data
    hub_defaults: ClassVar[dict[str, dict[str, Any]] | None] = None
    #: the hub adapters (synthmix.tasks.hub.FORMATS keys) whose rows map into this family
    hub_formats: ClassVar[tuple[str, ...]] = ()
    #: multiple choice: how a candidate's token log-likelihoods make its score, which picks the
    #: answer and gives the confidence: "mean" (per token, so long options are not penalised) or
    #: "sum" (the whole continuation's log-likelihood: lm-evaluation-harness's `acc`)
    choice_reduction: ClassVar[Literal["mean", "sum"]] = "mean"
    #: scoring runs programs in the sandbox (code: ~38 ms a test item, most of an evaluation's time),
    #: so a stage that runs tasks side by side starts these first (workers.map_tasks' `first`)
    runs_programs: ClassVar[bool] = False

    # ----- data -------------------------------------------------------------------------------
    @abstractmethod
    def build(self, split: Literal["train", "test"], n: int, seed: int) -> list[Example]:
        """Return `n` examples of `split`, deterministic in (`split`, `n`, `seed`).

        Train and test examples never share an ``id`` nor a prompt.
        """

    def corpus(self, rng: random.Random) -> list[str]:
        """One pass of the pretraining corpus over this family's world, in prose (synthmix.pretrain):
        documents that state what the world holds (facts, arithmetic, passages, code) and are
        disjoint from every item `build` can return, as the Pile is from the benchmarks. Each call
        words it afresh from `rng`, so more passes bring paraphrases, not copies. Default: nothing
        (hub and YAML tasks bring no world of their own)."""
        return []

    # ----- model I/O ----------------------------------------------------------------------------
    def choices(self, example: Example) -> list[str]:
        """Candidate completions of a "choice" task, in label order (gold = ``choices[label]``)."""
        raise NotImplementedError(f"task {self.name!r} is not a multiple-choice task")

    def stop(self, text: str) -> str:
        """A generated answer as this task's generation ends it (default: at EOS, as generated; a
        YAML task also cuts it at lm-eval's `until` strings). Evaluation and generation apply it."""
        return text

    @abstractmethod
    def extract(self, text: str) -> Any:
        """The answer in a model completion (`None` when there is none to find)."""

    # ----- scoring ------------------------------------------------------------------------------
    @abstractmethod
    def score(self, examples: list[Example], completions: list[str]) -> list[Scored]:
        """Score each completion against its example's gold fields (batched so code can run
        candidates in parallel)."""

    @abstractmethod
    def summarize(self, examples: list[Example], scored: list[Scored]) -> dict[str, float]:
        """Task metrics over a whole split; includes `score_name` (and e.g. HasAns/NoAns splits)."""

    @abstractmethod
    def trivial_baseline(self, train: list[Example], test: list[Example]) -> dict[str, Any]:
        """Score (under `score_name`) of the task's trivial predictor on `test`, with its name,
        e.g. ``{"name": "chance", "score": 0.2}``; the trained model must beat it clearly."""

    # ----- synthetic data -----------------------------------------------------------------------
    def instance_prompt(self, rng: random.Random) -> str:
        """Prefix from which the model writes a whole new example (``instances`` mode)."""
        return f"Task: {self.name}\n"

    def render_instance(self, example: Example) -> str:
        """An example as one text (prompt + completion), the format `parse_instance` reads back."""
        return example["prompt"] + example["completion"]

    @abstractmethod
    def parse_instance(self, text: str) -> Example | None:
        """Read a generated whole example back into the task's schema (`None` when malformed).

        The result has ``prompt``, ``completion`` and whichever gold fields can be recovered;
        gold fields that cannot be known from generated text are set to ``None``."""

    def verify_instances(self, examples: list[Example]) -> list[bool]:
        """Instances mode's verifier (validate.filter: verified, synthetic accuracy): per parsed
        whole example, whether it is right by the family's own check. Default: every `checks` flag
        holds; a family that can recompute its answer does (math's arithmetic, code's asserts)."""
        return [all(self.checks(ex).values()) for ex in examples]

    # ----- validation (great-expectations) --------------------------------------------------------
    @abstractmethod
    def checks(self, example: Example) -> dict[str, bool]:
        """Per-example validity flags of a generated sample, e.g. ``{"answer_parses": True}``.

        The validate stage turns each flag into a column and expects it to be true; any flag that
        is false marks the sample malformed."""

    #: inclusive bounds on the completion's length in characters for a sample to be well-formed
    #: (built-in data; for hub data `length_bounds` widens them to the gold lengths)
    completion_chars: ClassVar[tuple[int, int]] = (1, 2000)
    #: inclusive bounds on the prompt's length in characters (likewise)
    prompt_chars: ClassVar[tuple[int, int]] = (1, 4000)
    #: hub data: a sample's prompt or completion may be this many times as long as the longest gold one
    LENGTH_HEADROOM: ClassVar[float] = 1.25

    def configure(self, params: Params) -> None:
        """Take this family's runtime knobs from params.yaml before scoring (default: none)."""

    def length_bounds(self, gold: Sequence[Example] = ()) -> dict[str, tuple[int, int]]:
        """Inclusive bounds on a well-formed sample's ``prompt`` and ``completion`` lengths, in characters.

        Built-in data: the class's `prompt_chars` and `completion_chars`, whatever `gold` is. Hub and YAML data:
        `gold` (the external train split) sets them: each bound is widened, never narrowed, to cover
        every gold text, the upper one with `LENGTH_HEADROOM` to spare, so a real answer is never
        flagged for its length (GSM8K solutions run to hundreds of characters where the built-in
        math's are under 200) while an empty or runaway generation still is."""
        fixed = {"prompt": self.prompt_chars, "completion": self.completion_chars}
        if self.source == "builtin":
            return fixed
        if not gold:
            raise ValueError(f"task {self.name!r}: {self.source} data needs the external train split to bound lengths by")
        bounds = {}
        for column, (lo, hi) in fixed.items():
            lengths = [len(ex[column]) for ex in gold]
            bounds[column] = (min(lo, min(lengths)), max(hi, math.ceil(self.LENGTH_HEADROOM * max(lengths))))
        return bounds


REGISTRY: dict[str, type[TaskFamily]] = {}


def register(cls: type[TaskFamily]) -> type[TaskFamily]:
    """Class decorator: make a task family available under `cls.name`."""
    REGISTRY[cls.name] = cls
    return cls
