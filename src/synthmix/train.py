"""Stage `train`: fine-tune one model per task on an iteration's training set, with accelerate.

Loss is taken on the completion tokens only (the prompt is context), batches are grouped by
length to avoid padding, the learning rate warms up then decays on a cosine, and dvclive writes
the loss curve. Iteration 0 starts from the base model; iteration i >= 1 from the previous
iteration's model (or the base again, `train.init: base`).
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from dvclive import Live
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorForSeq2Seq, PreTrainedModel, PreTrainedTokenizerBase, get_cosine_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from synthmix import modeling, paths
from synthmix.params import Params, TrainParams
from synthmix.records import read_jsonl, write_json


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


def fine_tune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: list[dict[str, Any]],
    cfg: TrainParams,
    seed: int,
    log_dir: Path,
    desc: str = "train",
) -> dict[str, float]:
    """Train `model` in place on `examples`; return summary figures (final loss, tokens/s...)."""
    set_seed(seed)
    features = [encode(ex, tokenizer, cfg.max_length, cfg.loss_on == "sequence") for ex in examples]
    lengths = [len(f["input_ids"]) for f in features]
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        features,
        batch_size=cfg.batch_size,
        sampler=LengthGroupedSampler(cfg.batch_size, lengths=lengths, generator=generator),
        collate_fn=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
    )
    accelerator = Accelerator(
        mixed_precision="no" if cfg.mixed_precision == "fp32" else cfg.mixed_precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(loader) / cfg.gradient_accumulation_steps)
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    model.train()

    if log_dir.exists():
        shutil.rmtree(log_dir)  # a rerun replaces its curve instead of appending to a stale one
    step, tokens, last_loss, started = 0, 0, float("nan"), time.perf_counter()
    with Live(dir=str(log_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        bar = tqdm(total=total_steps, desc=desc, unit="step", disable=not accelerator.is_main_process)
        while step < total_steps:
            for batch in loader:
                with accelerator.accumulate(model):
                    loss = model(**batch).loss
                    accelerator.backward(loss)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                tokens += int(batch["attention_mask"].sum())
                if not accelerator.sync_gradients:
                    continue
                step += 1
                last_loss = loss.item()
                live.log_metric("loss", last_loss)
                live.log_metric("learning_rate", scheduler.get_last_lr()[0])
                live.next_step()
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.3f}")
                if step >= total_steps:
                    break
        bar.close()
        seconds = time.perf_counter() - started
        summary = {
            "final_loss": last_loss,
            "steps": step,
            "examples": len(examples),
            "seconds": round(seconds, 2),
            "tokens_per_second": round(tokens / max(seconds, 1e-9), 1),
        }
    # dvclive's own summary file sits inside the plotted directory, where `dvc plots show` would
    # take it for a (malformed) curve; the summary is returned and saved with the checkpoint.
    (log_dir / "metrics.json").unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    return summary


def starting_point(params: Params, iteration: int, task: str, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """Base model for iteration 0 (and for every iteration with `train.init: base`), else the previous one."""
    if iteration == 0 or params.train.init == "base":
        return modeling.base_model(params, tokenizer)
    return modeling.load_model(iteration - 1, task)


def run(params: Params, iteration: int) -> None:
    """Train every task's model of `iteration` on data/mixed/iter<iteration>."""
    tokenizer = modeling.load_tokenizer(paths.tokenizer())
    out_root = paths.MODELS / f"iter{iteration}"
    summaries = {}
    for task in params.tasks:
        examples = read_jsonl(paths.mixed(iteration, task))
        model = starting_point(params, iteration, task, tokenizer)
        n_params = modeling.count_parameters(model)
        desc = f"iter{iteration}/{task} ({n_params / 1e6:.1f}M params)"
        summary = fine_tune(
            model, tokenizer, examples, params.train, params.seed + iteration, paths.train_log(iteration, task), desc
        )
        out = paths.model(iteration, task)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        summaries[task] = {**summary, "parameters": n_params}
    write_json(out_root / "training.json", summaries)
