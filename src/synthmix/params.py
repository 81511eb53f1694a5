"""params.yaml, parsed and validated once into typed objects.

Every stage calls `load_params()` before doing any work, so a bad value stops the stage with a
message that names the key and what is allowed, and nothing is written.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator,
                      model_validator)

if TYPE_CHECKING:
    from synthmix.tasks.base import TaskFamily

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[int, Field(gt=0)]


class Section(BaseModel):
    """A params.yaml section: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True, populate_by_name=True)


class Iteration(Section):
    """One self-training iteration; `prev` names the model it samples from and fine-tunes."""

    id: Annotated[int, Field(ge=1)]
    prev: Annotated[int, Field(ge=0)]


def _builtin_tasks() -> list[str]:
    from synthmix.tasks import display_key, task_names

    return sorted(task_names(), key=display_key)


def _hub_defaults() -> dict[str, dict[str, dict[str, Any]]]:
    """`prepare.hub`'s defaults: each built-in family's own (`TaskFamily.hub_defaults`)."""
    from synthmix.tasks import hub_defaults

    return hub_defaults()


class HubSplit(Section):
    """One split of a dataset on the Hugging Face hub (or a local directory laid out like its repo)."""

    #: hub id ("openai/gsm8k") or a local directory holding the repo's files
    path: Annotated[str, Field(min_length=1)]
    #: the dataset's config ("main" for gsm8k, "full" for mbpp); None: its only/default config
    name: str | None = None
    #: a split name, or datasets' split syntax ("train+validation", "train[:1000]")
    split: Annotated[str, Field(min_length=1)]
    #: a commit sha, tag or branch of the dataset repo; None: the latest (pin it for reproducibility)
    revision: str | None = None
    #: the adapter mapping the rows (commonsense_qa, gsm8k, nq_open, squad_v2, humaneval, mbpp)
    format: Annotated[str, Field(min_length=1)]


class HubTask(Section):
    """Where one task's train and test examples come from."""

    train: HubSplit
    test: HubSplit


class PrepareParams(Section):
    """How the external (human-made) data is obtained.

    builtin: each family generates exactly `train_size`/`test_size` examples from `seed`.
    hub: the real benchmarks (`hub`); the sizes are caps: a split with more rows is cut to a
    seeded random sample of that many (kept in the dataset's order), null keeps every row.
    """

    source: Literal["builtin", "hub"] = "builtin"
    #: per built-in task, a source other than `source`, e.g. {math: hub}: one study mixes them
    #: (YAML tasks always read their YAML's dataset)
    sources: dict[str, Literal["builtin", "hub"]] = {}
    train_size: Positive | None = 2000
    test_size: Positive | None = 1000
    #: per-task overrides, e.g. {code: {train_size: 1000}}
    sizes: dict[str, dict[Literal["train_size", "test_size"], Positive | None]] = {}
    #: per task: {train: {path, name, split, revision, format}, test: {...}}, over each family's defaults
    hub: dict[str, HubTask] = Field(default_factory=_hub_defaults, validate_default=True)

    @field_validator("hub", mode="before")
    @classmethod
    def _hub_over_defaults(cls, value: Any) -> Any:
        """Merge the given keys over the families' defaults, so `{math: {train: {revision: abc}}}` changes one key."""
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of task -> {train: {...}, test: {...}}")
        defaults = _hub_defaults()
        unknown = sorted(set(value) - set(defaults))
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; allowed: {sorted(defaults)}")
        merged: dict[str, Any] = {}
        for task, default in defaults.items():
            given = value.get(task) or {}
            if not isinstance(given, dict):
                raise ValueError(f"{task}: must be a mapping {{train: {{...}}, test: {{...}}}} (got {given!r})")
            merged[task] = {**copy.deepcopy(default), **given}
            for split, spec in default.items():
                if isinstance(given.get(split), dict):
                    merged[task][split] = {**spec, **given[split]}
        return merged

    @field_validator("hub")
    @classmethod
    def _known_formats(cls, hub: dict[str, HubTask]) -> dict[str, HubTask]:
        from synthmix.tasks.hub import formats_of

        for task, spec in hub.items():
            for split in ("train", "test"):
                fmt, allowed = getattr(spec, split).format, formats_of(task)
                if fmt not in allowed:
                    raise ValueError(f"{task}.{split}.format: {fmt!r} is not a {task} adapter; allowed: {allowed}")
        return hub


class TokenizerParams(Section):
    """Byte-level BPE of a ladder model, trained on the pretraining corpus (synthmix.pretrain)."""

    vocab_size: Annotated[int, Field(ge=260, le=65536)] = 2048


class PretrainParams(Section):
    """The ladder's pretrained bases (synthmix.pretrain): one per size, shared by every experiment.

    Read by the pretrain stage only (with `model` and `tokenizer`): neither `ratio` nor the
    experiment's `seed` reruns it."""

    #: the corpus's wording and order, and the base model's initialisation
    seed: Annotated[int, Field(ge=0)] = 0
    #: passes over the task worlds: each states every fact (every function, passage...) once more,
    #: in new words; the corpus is trained on for one epoch. A fraction keeps that share of the
    #: (shuffled) documents: a quick look, or a test
    passes: Annotated[float, Field(gt=0)] = 30
    #: times a family's world is worded within each pass (default 1), e.g. {factual: 3}: its facts
    #: seen 3 x `passes` times. Closed-book recall grows with exposures (docs/regime.md, section 13)
    repeats: dict[str, Positive] = {}
    #: corpus documents packed into one training sequence (joined by EOS)
    pack: Positive = 4
    batch_size: Positive = 16
    learning_rate: Annotated[float, Field(gt=0, lt=1)] = 2e-3
    warmup_ratio: Fraction = 0.02
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    max_length: Positive = 512
    mixed_precision: Literal["auto", "fp32", "bf16", "fp16"] = "fp32"
    checkpoint_every: Annotated[int, Field(ge=0)] = 200

    @field_validator("repeats")
    @classmethod
    def _built_in_families(cls, repeats: dict[str, int]) -> dict[str, int]:
        from synthmix.tasks import task_names

        unknown = sorted(set(repeats) - set(task_names()))
        if unknown:
            raise ValueError(f"unknown famil{'y' if len(unknown) == 1 else 'ies'} {unknown}: the corpus is written "
                             f"by the built-in families {task_names()}")
        return repeats


class LoraParams(Section):
    """LoRA through peft, for models too large to fine-tune whole; r: 0 turns it off.

    After training the adapters are merged into the weights (merge_and_unload), so every
    checkpoint stays a plain from_pretrained directory and the next iteration starts from it.
    """

    r: Annotated[int, Field(ge=0)] = 0
    alpha: Annotated[float, Field(gt=0)] = 16.0
    dropout: Fraction = 0.05
    #: GPT-NeoX names: query_key_value, dense, dense_h_to_4h, dense_4h_to_h
    target_modules: list[str] = ["query_key_value"]


class TrainParams(Section):
    """Fine-tuning (3 epochs in the paper): phase 0 from the base, iterations 1+ from the previous model."""

    def for_iteration(self, iteration: int) -> "TrainParams":
        """The settings iteration `iteration` trains with: `later_learning_rate` where it applies."""
        if iteration > 0 and self.init == "previous" and self.later_learning_rate is not None:
            return self.model_copy(update={"learning_rate": self.later_learning_rate})
        return self

    epochs: Annotated[float, Field(gt=0)] = 3
    # Small batches: a 1M-parameter model needs the number of updates more than a large batch
    # (math: 32% exact at batch 8 vs 17% at batch 16, both 3 epochs of 2000 examples).
    #: the GLOBAL batch of one forward/backward pass, split across `accelerate.num_processes`
    #: (each process takes batch_size / num_processes examples of it), so 1 and N processes
    #: train on the same batches; one optimizer step sees batch_size x gradient_accumulation_steps
    batch_size: Positive = 8
    gradient_accumulation_steps: Positive = 1
    learning_rate: Annotated[float, Field(gt=0, lt=1)] = 2e-3
    warmup_ratio: Fraction = 0.05
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    max_length: Positive = 256
    #: auto | fp32 | bf16 | fp16, through accelerate. auto: bf16 autocast where the GPU or CPU runs
    #: bf16 natively (AVX512-BF16/AMX), fp32 elsewhere; training.json records what ran. (fp32, not
    #: accelerate's "no": DVC writes params.yaml as YAML 1.2, leaving `no` unquoted, and YAML 1.1
    #: readers then see the boolean false)
    mixed_precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    #: completion: loss on the answer only (the prompt is context); sequence: on prompt and answer,
    #: which `generate.mode: instances` needs (the model must learn to write prompts too)
    loss_on: Literal["completion", "sequence"] = "completion"
    #: what iteration i>=1 fine-tunes: the previous iteration's model, or the base model again
    init: Literal["previous", "base"] = "base"
    #: the peak learning rate of iterations 1 and later when they continue from the previous model
    #: (init: previous): a fine-tuning schedule for a model that has converged on the external data
    #: (None: `learning_rate`, the same schedule again)
    later_learning_rate: Annotated[float, Field(gt=0, lt=1)] | None = None
    #: recompute activations in the backward pass (less memory, ~30% more compute): large models
    gradient_checkpointing: bool = False
    #: optimizer steps between two saves of the training state to scratch space (synthmix.checkpoints),
    #: from which a killed stage resumes; 0: never (a killed task starts over)
    checkpoint_every: Annotated[int, Field(ge=0)] = 200
    lora: LoraParams = LoraParams()


class AccelerateParams(Section):
    """How train, generate and evaluate run: one process, or many through `accelerate launch`.

    With num_processes > 1 (or a config_file), those verbs relaunch themselves under
    `accelerate launch`: training is data parallel (DDP, or FSDP / DeepSpeed by the config file),
    generation and evaluation split their prompts between the processes. Like `threads`, no stage
    lists this section: it changes speed, not what is computed (docs/paper-scale.md says how close).
    """

    num_processes: Positive = 1
    #: an accelerate config file, e.g. configs/accelerate/fsdp.yaml (None: plain DDP)
    config_file: str | None = None
    #: rendezvous port of the launched processes (None: a free port is picked)
    main_process_port: Annotated[int, Field(ge=1, le=65535)] | None = None


#: the dtype models are loaded in for inference (generate, evaluate)
InferenceDtype = Literal["fp32", "bf16", "fp16"]


class GenerateParams(Section):
    """Sampling synthetic data from the previous iteration's model."""

    temperature: Annotated[float, Field(gt=0)] = 0.8
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.9
    #: answers: the model answers the external training prompts (self-training, STaR without its
    #: filter); instances: the model writes whole new examples (Self-Instruct)
    mode: Literal["answers", "instances"] = "answers"
    #: synthetic samples per task and iteration, as a multiple of the external train size
    size_factor: Annotated[float, Field(gt=0, le=10)] = 1.0
    #: prompts per forward pass on one device (each process runs whole batches)
    batch_size: Positive = 256
    #: rejection sampling (STaR): a prompt whose sample fails its verifier (synthmix.quality.verify)
    #: is sampled again, up to this many draws in all; 1 = one draw, the paper's setting. Pair it
    #: with validate.filter: verified, which then drops the prompts that never passed
    max_attempts: Annotated[int, Field(ge=1, le=64)] = 1
    dtype: InferenceDtype = "fp32"


class ValidateParams(Section):
    """What happens to generated samples: the great-expectations suite, verification, dedup
    (synthmix.validation, synthmix.quality)."""

    on_invalid: Literal["keep", "drop", "fail"] = "keep"
    max_duplicate_rate: Fraction = 0.5
    #: none (the paper: no filtering) | verified (keep only samples that pass their task's verifier:
    #: right against the source prompt's gold answer, or, for instances, parsed and passing the checks)
    filter: Literal["none", "verified"] = "none"
    #: near-duplicate removal: drop a sample whose Jaccard similarity (word 3-grams, MinHash) to an
    #: earlier kept one is at least this; 0 = off
    dedup: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


class MixParams(Section):
    """replace: fixed-size training set, `ratio` of its examples answered by the model instead (each
    prompt once); drop: the same examples removed, nothing added (replace's control); accumulate:
    external data kept whole, synthetic data of every iteration so far added."""

    mode: Literal["replace", "drop", "accumulate"] = "replace"


class EvaluateParams(Section):
    """Evaluation after every iteration."""

    batch_size: Positive = 64
    ece_bins: list[Annotated[int, Field(ge=2, le=1000)]] = [10, 15]
    #: sampled generations per task for Self-BLEU / Distinct-N (Self-BLEU is capped at this count)
    diversity_samples: Positive = 200
    code_timeout_s: Annotated[float, Field(gt=0)] = 3.0
    code_memory_mb: Annotated[int, Field(ge=32)] = 256
    #: where model-written code runs (synthmix.sandbox): auto = bubblewrap when it starts here, else
    #: the audit-hook guard with a warning; require = bubblewrap or fail; off = the guard. The
    #: environment variable SYNTHMIX_JAIL overrides it (same values).
    code_jail: Literal["auto", "require", "off"] = "auto"
    dtype: InferenceDtype = "fp32"


class GateParams(Section):
    """The paper's early-warning rule, checked after every iteration."""

    mode: Literal["warn", "halt"] = "warn"
    ece_relative_rise: Annotated[float, Field(gt=0)] = 0.5
    ece_absolute_rise: Annotated[float, Field(gt=0)] = 0.05
    score_flat: Annotated[float, Field(ge=0)] = 0.02


class ReportParams(Section):
    """`synthmix report` (no stage reads these: changing them reruns nothing)."""

    #: a ratio is "safe" while the score stays within this relative distance of ratio 0's
    tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.03
    #: the ratio at which task sensitivity (relative score change) is compared with the paper's
    sensitivity_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    #: bootstrap resamples of the seeds for the safe threshold's confidence interval
    bootstrap_samples: Annotated[int, Field(ge=100, le=100000)] = 1000


class SweepParams(Section):
    """`synthmix sweep --on slurm`: the resources of each grid cell's job (flags override them; no
    stage reads these)."""

    partition: str | None = None
    cpus_per_task: Positive = 2
    gpus: Annotated[int, Field(ge=0)] = 0
    #: Slurm's --time, e.g. "04:00:00"; None: the partition's default
    time: str | None = None
    #: Slurm's --mem, e.g. "16G"; None: the partition's default
    mem: str | None = None


LADDER = ("tiny", "small", "medium")


class Params(Section):
    """The whole params.yaml (with the active profile's overrides already applied)."""

    #: "builtin" (the laptop study) or a key of `profiles`, whose values override the rest
    profile: str = "builtin"
    profiles: dict[str, dict[str, Any]] = {}
    ratio: Fraction = 0.2
    seed: Annotated[int, Field(ge=0)] = 0
    #: a ladder size (tiny|small|medium) or a Hugging Face model id / local checkpoint directory
    model: str = "tiny"
    #: torch CPU threads of every stage (0 = torch's default, all cores); 1 suits `dvc queue start -j 2`
    threads: Annotated[int, Field(ge=0)] = 0
    #: processes that train/score tasks side by side on a CPU (0 = auto: one per core for ladder
    #: models, 1 on a GPU, under accelerate, or when `threads` is set); see synthmix.workers
    workers: Annotated[int, Field(ge=0)] = 0
    #: folders (or files) of lm-evaluation-harness task YAMLs, searched recursively (lm-eval's
    #: --include_path); `tasks` may name their tasks beside the built-in ones (synthmix.tasks.yaml_task)
    task_paths: list[str] = []
    #: default: every built-in family, in display order (commonsense, math, factual, reading, code)
    tasks: list[str] = Field(default_factory=lambda: _builtin_tasks())
    #: per task, the generation budget in new tokens of the greedy answers (evaluate), the synthetic
    #: samples (generate) and the diversity samples (evaluate); a task left out keeps its family's
    #: `max_new_tokens` (sized for the built-in data). See `generation_budget`.
    max_new_tokens: dict[str, Positive] = {}
    #: keyed "iter1", "iter2", ...: dvc.yaml's foreach names its stages after the keys (generate@iter1)
    iterations: dict[str, Iteration] = {f"iter{i}": Iteration(id=i, prev=i - 1) for i in (1, 2, 3)}
    prepare: PrepareParams = PrepareParams()
    tokenizer: TokenizerParams = TokenizerParams()
    pretrain: PretrainParams = PretrainParams()
    train: TrainParams = TrainParams()
    generate: GenerateParams = GenerateParams()
    # `validate` would shadow a pydantic method: the attribute is `validation`, the key `validate`
    validation: ValidateParams = Field(default=ValidateParams(), alias="validate")
    mix: MixParams = MixParams()
    evaluate: EvaluateParams = EvaluateParams()
    gate: GateParams = GateParams()
    accelerate: AccelerateParams = AccelerateParams()
    report: ReportParams = ReportParams()
    sweep: SweepParams = SweepParams()

    #: the checked YAML specs of the YAML tasks `tasks` names (set after validation)
    _yaml: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("task_paths")
    @classmethod
    def _task_paths(cls, task_paths: list[str]) -> list[str]:
        from synthmix.tasks import task_names
        from synthmix.tasks.yaml_spec import TaskYamlError, index

        try:
            found = index(task_paths)
        except TaskYamlError as err:
            raise ValueError(str(err).removeprefix("task_paths: ")) from None
        clash = sorted(set(found) & set(task_names()))
        if clash:
            raise ValueError(f"{found[clash[0]]} defines task {clash[0]!r}, the name of a built-in family: rename its `task`")
        return task_paths

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str], info: ValidationInfo) -> list[str]:
        from synthmix.tasks import task_names
        from synthmix.tasks.yaml_spec import index

        if "task_paths" not in info.data:  # task_paths itself is invalid (reported there)
            return tasks
        yaml_tasks = index(info.data["task_paths"])
        unknown = [t for t in tasks if t not in task_names() and t not in yaml_tasks]
        if unknown:
            absent = [p for p in info.data["task_paths"] if not Path(p).expanduser().exists()]
            where = f"; under task_paths: {sorted(yaml_tasks)}" if info.data["task_paths"] else (
                " (a task of your own: an lm-eval task YAML in a folder of task_paths)")
            where += f" (task_paths that do not exist here: {absent})" if absent else ""
            raise ValueError(f"unknown task(s) {unknown}; built-in: {task_names()}{where}")
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError("must list each task at most once, and at least one")
        return tasks  # the YAML tasks' files are checked once, in _tasks_and_their_settings

    @model_validator(mode="after")
    def _tasks_and_their_settings(self) -> Params:
        from synthmix.tasks import task_names
        from synthmix.tasks.yaml_spec import TaskYamlError, index, parse_spec

        found = index(self.task_paths)
        for name in self.tasks:
            if name in found:
                try:
                    self._yaml[name] = parse_spec(found[name])
                except TaskYamlError as err:
                    raise ValueError(f"tasks: task {name!r}: {err}") from None
        known = set(task_names()) | set(self._yaml)
        unknown = sorted(set(self.max_new_tokens) - known)
        if unknown:
            raise ValueError(f"max_new_tokens: unknown task(s) {unknown}; allowed: {sorted(known)}")
        for key, given in (("prepare.sources", self.prepare.sources), ("prepare.sizes", self.prepare.sizes)):
            unknown = sorted(set(given) - known)
            if unknown:
                raise ValueError(f"{key}: unknown task(s) {unknown}; allowed: {sorted(known)}")
        wrong = sorted(set(self.prepare.sources) & set(self._yaml))
        if wrong:
            raise ValueError(f"prepare.sources.{wrong[0]}: a YAML task reads its YAML's dataset; remove the key")
        if self._yaml and self.generate.mode == "instances":
            raise ValueError(f"generate.mode: instances is not supported for YAML tasks ({sorted(self._yaml)}): a "
                             "generated example's gold fields cannot be read back through a template; use answers")
        unset = {}  # the key that is null -> the built-in tasks it leaves without a size
        for name in self.tasks:
            for split in ("train", "test") if self.task_source(name) == "builtin" else ():
                if self.size(name, split) is None:
                    key = f"{split}_size"
                    key = f"sizes.{name}.{key}" if key in self.prepare.sizes.get(name, {}) else key
                    unset.setdefault(f"prepare.{key}", []).append(name)
        if unset:
            raise ValueError("; ".join(
                f"{key}: null (every row) needs source: hub or a YAML task (the built-in families generate "
                f"exactly as many examples as asked: {', '.join(names)})" for key, names in unset.items()))
        return self

    @model_validator(mode="after")
    def _chained_iterations(self) -> Params:
        # Iteration i must sample from the model of iteration i-1: the chain dvc.yaml builds.
        for expected, (key, it) in enumerate(self.iterations.items(), start=1):
            if key != f"iter{expected}" or it.id != expected or it.prev != expected - 1:
                raise ValueError(
                    f"iterations.{key} is {{id: {it.id}, prev: {it.prev}}}; expected "
                    f"iter{expected}: {{id: {expected}, prev: {expected - 1}}} (iterations chain 1, 2, 3, ...)"
                )
        if self.generate.mode == "instances" and self.train.loss_on != "sequence":
            raise ValueError(
                "generate.mode: instances needs train.loss_on: sequence (a model trained on answers "
                "only never learns to write the prompts of new examples)"
            )
        if self.mix.mode == "accumulate" and self.ratio >= 1:
            raise ValueError("ratio must be < 1 when mix.mode is accumulate (external data is kept whole)")
        return self

    @property
    def uses_ladder(self) -> bool:
        return self.model in LADDER

    def task_source(self, name: str) -> Literal["builtin", "hub", "yaml"]:
        """Where `name`'s external data comes from: its YAML, else prepare.sources.<name>, else prepare.source."""
        if name in self._yaml:
            return "yaml"
        return self.prepare.sources.get(name, self.prepare.source)

    def task(self, name: str) -> TaskFamily:
        """The task family `name` as this study runs it: its source's validity rules, a YAML task's
        spec, and its runtime knobs from these params (`TaskFamily.configure`)."""
        from synthmix.tasks import get_task

        task = get_task(name, source=self.task_source(name), specs=self._yaml)
        task.configure(self)
        return task

    def generation_budget(self, task: TaskFamily) -> int:
        """New tokens `task`'s answers and samples may take: `max_new_tokens.<task>`, else the family's."""
        return self.max_new_tokens.get(task.name, task.max_new_tokens)

    def size(self, task: str, split: Literal["train", "test"]) -> int | None:
        """Number of external examples of `task` in `split` (source hub: a cap; None: every row)."""
        key = "train_size" if split == "train" else "test_size"  # split: "train" | "test"
        return self.prepare.sizes.get(task, {}).get(key, getattr(self.prepare, key))


class ParamsError(ValueError):
    """params.yaml is invalid; the message lists every bad key."""


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        if not e["loc"] and e["type"] == "value_error":
            # a check across keys (a model validator): its message starts with the key(s) it is about
            lines.append(f"  {e['msg'].removeprefix('Value error, ')}")
            continue
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {key}: {e['msg']}{shown}")
    return "\n".join(lines)


def _overlay(base: dict, override: dict) -> dict:
    """`base` with `override` merged in, section by section (nested mappings merge, values replace)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "iterations":
            out[key] = _overlay(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_profile(raw: dict, name: str) -> dict:
    """params.yaml as profile `name` sees it: its `profiles.<name>` overrides merged into the rest."""
    if name == "builtin":
        return raw
    profiles = raw.get("profiles") or {}
    if name not in profiles:
        raise ParamsError(f"profile: {name!r} is not defined; profiles: builtin, {', '.join(profiles) or '(none)'}")
    override = profiles[name] or {}
    forbidden = {"profile", "profiles"} & set(override)
    if forbidden:
        raise ParamsError(f"profiles.{name} may not set {sorted(forbidden)}")
    return _overlay(raw, override)


def parse_params(raw: dict, source: str = "params.yaml") -> Params:
    """Validate a params mapping, with its active profile applied; raise ParamsError naming every bad key.

    Every profile is validated, not only the active one, so a typo in `profiles.paper` is caught
    on the laptop before anybody books GPUs.
    """
    raw = raw or {}
    if not isinstance(raw.get("profiles", {}), dict):
        raise ParamsError(f"{source} is invalid:\n  profiles: must be a mapping of profile name -> overrides")
    active = raw.get("profile", "builtin")
    for name in ["builtin", *(raw.get("profiles") or {})]:
        try:
            params = Params.model_validate(apply_profile(raw, name))
        except ValidationError as err:
            where = f"{source}" if name == "builtin" else f"{source} with profile {name!r} (profiles.{name} overrides)"
            raise ParamsError(f"{where} is invalid:\n{_describe(err)}") from None
        if name == active:
            result = params
    if active != "builtin" and active not in (raw.get("profiles") or {}):
        apply_profile(raw, active)  # raises, naming the defined profiles
    return result


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found (run synthmix from the project root)")
    with path.open() as f:
        return parse_params(yaml.safe_load(f), source=str(path))
