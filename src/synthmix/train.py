"""Stage `train`: fine-tune one model per task on an iteration's training set, with accelerate.

Loss is taken on the completion tokens only (the prompt is context), batches are grouped by
length to avoid padding, the learning rate warms up then decays on a cosine, and dvclive writes
the loss curve. Iteration 0 starts from the base model; iteration i >= 1 from the previous
iteration's model (or the base again, `train.init: base`).

A killed stage resumes (synthmix.checkpoints): every `train.checkpoint_every` steps the task's
state is saved to scratch space outside DVC's outputs; run again, it continues from there (to the
same weights, bit for bit on a CPU), and tasks that had finished are copied back, not retrained.
A loss that turns NaN or infinite stops the stage (`TrainingDiverged`) before anything is saved.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, DistributedType, set_seed
from dvclive import Live
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, get_cosine_schedule_with_warmup
from transformers.trainer_pt_utils import get_length_grouped_indices

from synthmix import checkpoints, distributed, modeling, paths, workers
from synthmix.params import Params, TrainParams
from synthmix.records import read_jsonl, write_json

#: optimizer steps between two transfers of the loss to the host (each step is still logged)
LOG_EVERY = 16


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the stage stops, naming the task, the step and the knobs."""


def encode(
    example: dict[str, Any], tokenizer: PreTrainedTokenizerBase, max_length: int, prompt_loss: bool = False
) -> dict[str, list[int]]:
    """Token ids of prompt + completion + EOS; labels mask the prompt (-100) unless `prompt_loss`."""
    prompt = tokenizer(example["prompt"], add_special_tokens=False)["input_ids"]
    answer = tokenizer(example["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt + answer)[:max_length]
    labels = (prompt if prompt_loss else [-100] * len(prompt)) + answer
    labels = labels[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def _target_tokens(feature: dict[str, list[int]]) -> int:
    """Tokens the loss is taken on: labels after the shift (position i predicts token i+1), not -100."""
    return sum(1 for label in feature["labels"][1:] if label != -100)


def collate(features: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch: pad id, attention 0 and label -100 past each sequence.

    Not DataCollatorForSeq2Seq: that pads on `tokenizer.padding_side`, a setting of the tokenizer
    (some hub tokenizers ship "left"), and training must always pad on the right."""
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        ids[row, :n] = torch.tensor(f["input_ids"])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(f["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _shard(batch: list[int], rank: int, world: int) -> list[int]:
    """Process `rank`'s contiguous slice of a global batch (sizes differ by at most one)."""
    per, extra = divmod(len(batch), world)
    start = rank * per + min(rank, extra)
    return batch[start : start + per + (1 if rank < extra else 0)]


def summed_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], head_on_targets: bool = False) -> torch.Tensor:
    """Sum (not mean) of the next-token cross-entropy over the batch's target tokens.

    With `head_on_targets`, the output layer runs only at the positions that have a target
    (`modeling.logits_at`): with the loss on the completion, most positions are prompt and padding,
    and the vocabulary projection plus its softmax are the largest per-position cost of a small
    model. The model must then be the plain module (no DDP/FSDP wrapper: their hooks run in the
    wrapper's forward)."""
    # Shift the labels, not the logits (no copy of the largest tensor), as transformers' own loss does.
    labels = torch.nn.functional.pad(batch["labels"], (0, 1), value=-100)[:, 1:]
    if head_on_targets:
        rows, cols = (labels != -100).nonzero(as_tuple=True)
        logits = modeling.logits_at(model, batch["input_ids"], batch["attention_mask"], rows, cols)
        return torch.nn.functional.cross_entropy(logits.float(), labels[rows, cols], reduction="sum")
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    return torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum"
    )


def _log_steps(live: Live, steps: list[tuple[float, float]]) -> None:
    """Log (loss, learning rate) of consecutive optimizer steps to dvclive, one row each, synced once.

    dvclive's next_step writes the summary and re-reads every metric file written so far (for
    Studio, even when none is configured): once per step that is quadratic in the steps (1.4 s of
    a 500-step, 8.9-s run here). So the steps are counted with the public `step` setter and only
    the last ends with next_step: the files hold the same rows."""
    for k, (loss, lr) in enumerate(steps):
        live.log_metric("loss", loss)
        live.log_metric("learning_rate", lr)
        if k == len(steps) - 1:
            live.next_step()
        else:
            live.step += 1


def _apply_lora(model: PreTrainedModel, cfg: TrainParams) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = cfg.lora
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def merge_lora_state_dict(peft_model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> PreTrainedModel:
    """A plain model with LoRA merged, rebuilt from a full PEFT state dict (sharded backends).

    Under FSDP or DeepSpeed ZeRO-3 the live modules hold only shards, so merge_and_unload cannot run
    on them; `accelerator.get_state_dict` gathers the full state on the main process instead, and
    this loads it into a copy built on the meta device (no second allocation of the weights) and
    merges there with peft's own merge_and_unload.
    """
    from peft import get_peft_model

    base = peft_model.get_base_model()
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(base.config, dtype=base.dtype)
    copy = get_peft_model(skeleton, peft_model.peft_config["default"])
    copy.load_state_dict(state_dict, strict=True, assign=True)
    return copy.merge_and_unload()


def training_dtype(cfg: TrainParams) -> torch.dtype:
    """The dtype the starting weights load in: fp32 master weights, except frozen LoRA bases under
    half-precision training, which are never updated and so need no fp32 copy."""
    precision = resolved_precision(cfg)
    if cfg.lora.r and precision != "fp32":
        return torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.float32


def bf16_supported() -> bool:
    """Whether this machine runs bf16 matmuls natively: a CUDA GPU that supports bf16, or a CPU with
    AVX512-BF16 or AMX (elsewhere CPU bf16 is emulated, slower than fp32)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def resolved_precision(cfg: TrainParams) -> str:
    """`train.mixed_precision` with `auto` resolved: bf16 autocast where supported, else fp32."""
    if cfg.mixed_precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    return cfg.mixed_precision


def make_accelerator(cfg: TrainParams) -> Accelerator:
    """The Accelerator of a training run (one process, or DDP / FSDP / DeepSpeed under `accelerate launch`)."""
    precision = resolved_precision(cfg)
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision="no" if precision == "fp32" else precision,
        # the scheduler steps once per optimizer step (not once per process)
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )


def fine_tune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[dict[str, Any]],
    cfg: TrainParams,
    seed: int,
    log_dir: Path,
    desc: str = "train",
    save_to: Path | None = None,
    accelerator: Accelerator | None = None,
    checkpoint_dir: Path | None = None,
) -> dict[str, float]:
    """Train `model` on `examples` (in place on one process); return summary figures (final loss, tokens/s...).

    One process or many (under `accelerate launch`): the global batches are the same either way,
    formed from the seeded length-grouped order of all examples; process r of N takes its slice of
    each (`train.batch_size` is global). The loss of an optimizer step is the mean over all its
    target tokens, whatever process or micro-batch they fell in: each process contributes
    N x (its summed loss) / (the step's total target tokens), and DDP / FSDP / ZeRO average the
    gradients over the N processes. So N processes compute the same update as one, up to the
    order of floating-point sums.

    With `save_to`, the trained model (LoRA merged) is saved there by the main process only.
    With `checkpoint_dir`, the state is saved there every `cfg.checkpoint_every` steps, and a
    checkpoint found there is resumed from: weights, optimizer, scheduler, RNG states, the
    position in the epoch's data order and the loss curve, so the run ends as an uninterrupted
    one would. A NaN or infinite loss raises TrainingDiverged before any of it is saved.
    """
    set_seed(seed)
    accelerator = accelerator or make_accelerator(cfg)
    rank, world = accelerator.process_index, accelerator.num_processes
    ds_plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if ds_plugin is not None:
        if cfg.gradient_accumulation_steps > 1:
            raise ValueError("train.gradient_accumulation_steps > 1 is not supported with DeepSpeed here: raise "
                             "train.batch_size (global) instead")
        ds_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = max(1, cfg.batch_size // world)

    features = [encode(ex, tokenizer, cfg.max_length, cfg.loss_on == "sequence") for ex in examples]
    lengths = [len(f["input_ids"]) for f in features]
    targets = [_target_tokens(f) for f in features]
    generator = torch.Generator().manual_seed(seed)

    if cfg.gradient_checkpointing:
        # activation_checkpointing_enable is the name from transformers 5.2x on (the old one warns)
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.lora.r:
        model = _apply_lora(model, cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    plain = accelerator.distributed_type == DistributedType.NO
    # fused AdamW: one kernel over all parameters instead of a Python loop over them (~6 ms a step
    # on a 1M-parameter model here, as long as the forward pass); DeepSpeed brings its own optimizer
    fused = ds_plugin is None and all(p.dtype == torch.float32 for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused)
    batches_per_epoch = math.ceil(len(features) / cfg.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.gradient_accumulation_steps)
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    model.train()

    def micro_batch(batch: list[int]) -> tuple[dict[str, torch.Tensor], bool]:
        mine = _shard(batch, rank, world)
        # A process left without examples (a last batch smaller than N) still joins the
        # gradient all-reduce, with a zero-weighted copy of the batch's first example.
        rows = mine or batch[:1]
        tensors = collate([features[i] for i in rows], tokenizer.pad_token_id)
        return {k: v.to(accelerator.device) for k, v in tensors.items()}, bool(mine)

    main = accelerator.is_main_process
    step, tokens, last_loss, started = 0, 0, float("nan"), time.perf_counter()
    history: list[tuple[float, float]] = []  # (mean loss, lr) of every step so far: the curve
    resume_first, epoch_state = 0, None
    resumed = checkpoints.latest(checkpoint_dir)
    if resumed is not None:
        accelerator.load_state(str(resumed))
        progress = json.loads((resumed / "progress.json").read_text())
        step, tokens, resume_first = progress["step"], progress["tokens"], progress["next_first"]
        history = [(float(m), float(lr)) for m, lr in progress["history"]]
        epoch_state = torch.load(resumed / "generator.pt")
        last_loss = history[-1][0] if history else last_loss
    if main and log_dir.exists():
        shutil.rmtree(log_dir)  # a rerun replaces its curve instead of appending to a stale one
    live = Live(dir=str(log_dir), dvcyaml=None, save_dvc_exp=False, report=None) if main else None
    if live is not None:
        _log_steps(live, history)  # the curve up to the checkpoint, as the killed run logged it
    # the output layer at target positions only: where the model is the plain module and its
    # family's output is its last hidden state through one linear layer (modeling.logits_at)
    head_on_targets = plain and modeling.has_plain_head(model)
    pending: list[tuple[torch.Tensor, float, int]] = []  # (summed loss on device, lr, target tokens)
    precision = resolved_precision(cfg)

    def flush() -> float:
        """Copy the buffered step losses to the host in one transfer; log them; the last one's mean.
        A NaN or infinite loss raises TrainingDiverged (naming the first such step)."""
        nonlocal pending
        if not pending:
            return last_loss
        sums = accelerator.reduce(torch.stack([p[0] for p in pending]), reduction="sum").tolist()
        means = [total / n_targets for total, (_, _, n_targets) in zip(sums, pending)]
        first_step = step - len(pending) + 1
        for k, (mean, (_, lr, _)) in enumerate(zip(means, pending)):
            if not math.isfinite(mean):
                raise TrainingDiverged(
                    f"{desc}: the training loss became {mean} at step {first_step + k} of {total_steps} "
                    f"(learning rate {lr:.3g}, precision {precision}); nothing of this run was saved. "
                    "Lower train.learning_rate (or raise train.warmup_ratio), or train in fp32 "
                    "(train.mixed_precision: fp32)"
                )
        logged = [(mean, lr) for mean, (_, lr, _) in zip(means, pending)]
        history.extend(logged)
        if live is not None:
            _log_steps(live, logged)
        pending = []
        return means[-1]

    def checkpoint(next_first: int) -> None:
        """Save the state after `step` (the losses flushed and checked first: no diverged state)."""
        nonlocal last_loss
        last_loss = flush()
        assert checkpoint_dir is not None
        tmp = checkpoints.staging(checkpoint_dir, step)
        if main:
            checkpoints.begin(checkpoint_dir, step)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))  # every process: a collective under sharded backends
        accelerator.wait_for_everyone()
        if main:
            torch.save(epoch_state, tmp / "generator.pt")
            progress = {"step": step, "tokens": tokens, "next_first": next_first, "history": history}
            checkpoints.commit(checkpoint_dir, step, progress)
        accelerator.wait_for_everyone()

    tokens_before = tokens  # what the killed run had trained on (tokens/s is of this run)
    bar = tqdm(total=total_steps, initial=step, desc=desc, unit="step", disable=not main)
    while step < total_steps:
        if epoch_state is None:
            epoch_state = generator.get_state()
        else:  # resuming: this epoch's order again, from the generator state it was drawn with
            generator.set_state(epoch_state)
        order = get_length_grouped_indices(lengths, cfg.batch_size, generator=generator)
        batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        start_first, resume_first = resume_first, 0
        for first in range(start_first, len(batches), cfg.gradient_accumulation_steps):
            group = batches[first : first + cfg.gradient_accumulation_steps]
            step_targets = max(1, sum(targets[i] for batch in group for i in batch))
            local_sum = torch.zeros((), device=accelerator.device)
            for k, batch in enumerate(group):
                inputs, has_rows = micro_batch(batch)
                last = k == len(group) - 1
                with contextlib.nullcontext() if last or ds_plugin is not None else accelerator.no_sync(model):
                    # prepare() wraps the model's forward in autocast; logits_at calls its submodules
                    with accelerator.autocast():
                        loss_sum = summed_loss(model, inputs, head_on_targets) * (1.0 if has_rows else 0.0)
                    accelerator.backward(loss_sum * (world / step_targets))
                local_sum += loss_sum.detach()
                tokens += sum(lengths[i] for i in batch)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            # no host sync per step: losses stay on the device and are logged LOG_EVERY steps at once
            pending.append((local_sum, scheduler.get_last_lr()[0], step_targets))
            if len(pending) == LOG_EVERY or step >= total_steps:
                last_loss = flush()
                bar.set_postfix(loss=f"{last_loss:.3f}", refresh=False)
            bar.update(1)
            if step >= total_steps:
                break
            if checkpoint_dir is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint(first + cfg.gradient_accumulation_steps)
        epoch_state = None  # the next epoch draws its order from where this one left the generator
    last_loss = flush()
    bar.close()
    seconds = time.perf_counter() - started
    summary = {
        "final_loss": last_loss,
        "resumed_from_step": int(resumed.name.split("-")[1]) if resumed is not None else 0,
        "mixed_precision": resolved_precision(cfg),
        "steps": step,
        "examples": len(examples),
        "processes": world,
        "seconds": round(seconds, 2),
        "tokens_per_second": round((tokens - tokens_before) / max(seconds, 1e-9), 1),
    }
    if live is not None:
        live.end()
        # dvclive's own summary file sits inside the plotted directory, where `dvc plots show` would
        # take it for a (malformed) curve; the summary is returned and saved with the checkpoint.
        (log_dir / "metrics.json").unlink(missing_ok=True)
    _finish(accelerator, model, cfg, save_to, tokenizer)
    return summary


def _finish(accelerator: Accelerator, model: torch.nn.Module, cfg: TrainParams, save_to: Path | None,
            tokenizer: PreTrainedTokenizerBase) -> None:
    """Merge LoRA and save the checkpoint from the main process (gathering shards first where sharded)."""
    accelerator.wait_for_everyone()
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    if not sharded:
        # keep_fp32_wrapper=False: the caller's model gets its own forward back, not the autocast one
        plain = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
        if cfg.lora.r:
            plain = plain.merge_and_unload()  # in place: the caller's model object is the merged model
        if save_to is not None and accelerator.is_main_process:
            plain.save_pretrained(save_to)
    elif save_to is not None:
        state_dict = accelerator.get_state_dict(model)  # a collective: every process takes part
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(model)
            if cfg.lora.r:
                merged = merge_lora_state_dict(unwrapped, state_dict)
                merged.save_pretrained(save_to)
            else:
                unwrapped.save_pretrained(save_to, state_dict=state_dict)
    if save_to is not None and accelerator.is_main_process:
        tokenizer.save_pretrained(save_to)
    accelerator.wait_for_everyone()
    accelerator.free_memory()


def starting_point(params: Params, iteration: int, task: str, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """Base model for iteration 0 (and for every iteration with `train.init: base`), else the previous one."""
    dtype = training_dtype(params.train)
    if iteration == 0 or params.train.init == "base":
        return modeling.base_model(params, tokenizer, dtype=dtype)
    return modeling.load_model(iteration - 1, task, dtype=dtype)


def scratch_dir(params: Params, iteration: int, task: str) -> Path:
    """`task`'s scratch directory for checkpoints (synthmix.checkpoints), keyed by everything its
    result depends on: the train params, seed, model, training set, starting weights and this code."""
    if iteration > 0 and params.train.init == "previous":
        start: Path | None = paths.model(iteration - 1, task)
    else:
        start = paths.base(params.model) if params.uses_ladder else None
    parts = {
        "train": params.train.model_dump(exclude={"checkpoint_every"}), "seed": params.seed, "model": params.model,
        "iteration": iteration, "task": task,
        "code": [hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest() for m in (sys.modules[__name__], modeling)],
    }
    files = [paths.mixed(iteration, task), paths.tokenizer()] + ([start] if start is not None else [])
    return checkpoints.task_dir(iteration, task, checkpoints.task_key(parts, files))


def train_task(params: Params, iteration: int, task: str, accelerator: Accelerator | None = None) -> dict[str, Any]:
    """Train and save `task`'s model of `iteration`; its summary figures (for training.json).

    A task that finished before the stage was killed is copied back from scratch, not retrained;
    one that was killed midway resumes from its last checkpoint."""
    accelerator = accelerator or make_accelerator(params.train)
    scratch = scratch_dir(params, iteration, task)
    # (one process only: under a launcher every process must take part in training anyway)
    done = checkpoints.restore_done(scratch, paths.model(iteration, task), paths.train_log(iteration, task)) \
        if accelerator.num_processes == 1 else None
    if done is not None:
        print(f"iter{iteration}/{task}: finished before the stage was interrupted; restored, not retrained")
        return {**done, "restored": True}
    tokenizer = modeling.load_tokenizer(paths.tokenizer())
    examples = read_jsonl(paths.mixed(iteration, task))
    model = starting_point(params, iteration, task, tokenizer)
    n_params = modeling.count_parameters(model)
    desc = f"iter{iteration}/{task} ({n_params / 1e6:.1f}M params)"
    resuming = checkpoints.latest(scratch)
    if resuming is not None:
        print(f"iter{iteration}/{task}: resuming from {resuming}")
    summary = fine_tune(
        model, tokenizer, examples, params.train.for_iteration(iteration), params.seed + iteration,
        paths.train_log(iteration, task), desc,
        save_to=paths.model(iteration, task), accelerator=accelerator, checkpoint_dir=scratch,
    )
    summary = {**summary, "parameters": n_params, "threads": torch.get_num_threads()}
    if accelerator.is_main_process:
        checkpoints.mark_done(scratch, paths.model(iteration, task), paths.train_log(iteration, task), summary)
    return summary


def run(params: Params, iteration: int) -> None:
    """Train every task's model of `iteration` on data/mixed/iter<iteration> (one process or many).

    On a CPU the tasks train side by side in `workers.count` forked processes (one per core for
    ladder models); under `accelerate launch` every process takes part in every task, one after
    the other."""
    n_workers = workers.count(params, len(params.tasks))
    if n_workers > 1:
        # nothing here touches a tensor before the fork (see synthmix.workers)
        # the largest training sets first, so no long task starts last and runs alone
        results = workers.map_tasks(functools.partial(train_task, params, iteration), params.tasks, n_workers,
                                    params.threads, cost=lambda task: workers.file_size(paths.mixed(iteration, task)))
    else:
        # Before any model is built: under a launcher this joins the process group, and DeepSpeed's
        # ZeRO-3 init / FSDP's rank-0-only loading need the accelerate state to exist at load time.
        accelerator = make_accelerator(params.train)
        results = [train_task(params, iteration, task, accelerator) for task in params.tasks]
    summaries = {task: {**summary, "workers": n_workers} for task, summary in zip(params.tasks, results)}
    if distributed.is_main_process():
        write_json(paths.MODELS / f"iter{iteration}" / "training.json", summaries)
        checkpoints.clear(iteration)  # every task finished: the scratch space goes
