"""Training throughput: synthmix's loop against a padded HF `Trainer`, side by side in one run.

    python benchmarks/bench_train.py                    # tiny and small, params.yaml's train section
    python benchmarks/bench_train.py --sizes tiny --examples 1000

Both train one freshly initialised ladder model per task family (same seed) on the same built-in
examples of each of the five families for one epoch, with the same learning-rate schedule and the
same number of examples per batch:

- synthmix, as the train stage runs it: `synthmix.train.fine_tune` at params.yaml's `train`
  section (mixed precision resolved as the stage resolves it, length-grouped batches, the output
  layer at target positions only), the tasks side by side in `workers.count` forked processes;
  also the loop alone, the tasks one after another in this process on all cores;
- HF `Trainer`: fp32, transformers' default (SDPA) attention, `DataCollatorForSeq2Seq` padding each
  batch (in random order) to its longest example, the model's own loss, the tasks one after
  another on all cores: what a team gets from the library's defaults.

Throughput is counted in real (non-padding) tokens per second of wall time, so both are charged for
the same work; MFU is 6 x parameters x tokens/s against the fp32 and bf16 matmul peaks measured
at the start of the run. The last line is the smaller of the sizes' train-stage speedups.

This machine's speed drifts by up to ~40% within a minute (the same fp32 epoch took 11.0 s and
13.8 s a minute apart), so `--repeats R` runs the three contenders R times, interleaved (HF, loop,
stage, HF, ...), and compares their medians; each round's own ratio range is printed too.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from accelerate.state import AcceleratorState  # noqa: E402
from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments  # noqa: E402

from synthmix import modeling, workers  # noqa: E402
from synthmix.params import load_params  # noqa: E402
from synthmix.tasks import get_task  # noqa: E402
from synthmix.tokenizer import train_tokenizer  # noqa: E402
from synthmix.train import encode, fine_tune, resolved_precision  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["commonsense", "math", "factual", "reading", "code"]


def matmul_gflops(dtype: torch.dtype, n: int = 1024, repeats: int = 30) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def built_in_examples(n: int, seed: int) -> dict[str, list[dict]]:
    """n examples per task family, as the train stage reads them (one set per task)."""
    return {name: get_task(name).build("train", n, seed) for name in TASKS}


def synthmix_task(task: str, examples: dict, sized, tokenizer, cfg, tmp: str) -> tuple[float, int]:
    """(seconds, parameters) of one task's epoch through fine_tune, as the train stage runs it."""
    AcceleratorState._reset_state(reset_partial_state=True)
    model = modeling.ladder_model(sized.model, tokenizer, sized.seed)
    seconds = fine_tune(model, tokenizer, examples[task], cfg, sized.seed, Path(tmp) / task)["seconds"]
    return seconds, modeling.count_parameters(model)


def hf_trainer_epoch(model, tokenizer, examples, cfg, seed: int, out: Path) -> float:
    """Seconds for one epoch of HF Trainer (fp32, padded batches, its own loss)."""
    features = [encode(ex, tokenizer, cfg.max_length) for ex in examples]
    steps = math.ceil(len(features) / cfg.batch_size)
    tokenizer.padding_side = "right"
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=cfg.batch_size, num_train_epochs=1,
        learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        warmup_steps=int(cfg.warmup_ratio * steps), lr_scheduler_type="cosine",
        logging_strategy="no", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        seed=seed, dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=features,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100))
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], help="ladder sizes (default: tiny small)")
    parser.add_argument("--examples", type=int, default=400, help="training examples per task (default 400)")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"), help="params.yaml whose train section synthmix runs")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of the three contenders, interleaved; medians compared (default 1)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    params = load_params(args.params)
    cfg = params.train.model_copy(update={"epochs": 1})
    data = built_in_examples(args.examples, params.seed)
    everything = [ex for rows in data.values() for ex in rows]
    tokenizer = train_tokenizer((ex["prompt"] + ex["completion"] for ex in everything), params.tokenizer.vocab_size)
    n_tokens = sum(len(encode(ex, tokenizer, cfg.max_length)["input_ids"]) for ex in everything)
    peaks = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    n_workers = workers.count(params, len(TASKS))
    print(f"matmul peaks: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; {len(TASKS)} tasks x "
          f"{args.examples} examples, {n_tokens} tokens, {workers.cores()} cores")
    print(f"synthmix: the train stage's way: batch {cfg.batch_size}, {cfg.mixed_precision} -> "
          f"{resolved_precision(cfg)}, {n_workers} task worker(s)\n"
          f"HF Trainer: batch {cfg.batch_size}, fp32, SDPA attention, padded, the tasks one after another, all cores\n")
    print(f"{'size':<7}{'params':>8}  {'loop':<22}{'seconds':>8}{'tokens/s':>10}{'MFU fp32':>10}{'MFU bf16':>10}")
    ratios, loop_ratios = [], []
    for size in args.sizes:
        sized = params.model_copy(update={"model": size})
        rounds: list[tuple[float, float, float]] = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                for task in TASKS:
                    AcceleratorState._reset_state(reset_partial_state=True)
                    model = modeling.ladder_model(sized.model, tokenizer, sized.seed)  # the same seeded initialisation as ours
                    model.set_attn_implementation("sdpa")  # transformers' default
                    n_params = modeling.count_parameters(model)
                    hf_trainer_epoch(model, tokenizer, data[task], cfg, params.seed, Path(tmp) / task)
                hf_round = time.perf_counter() - start
                # one process, all cores: the loop alone, without task workers
                loop_round = sum(synthmix_task(task, data, sized, tokenizer, cfg, tmp)[0] for task in TASKS)
                start = time.perf_counter()
                fn = functools.partial(synthmix_task, examples=data, sized=sized, tokenizer=tokenizer, cfg=cfg, tmp=tmp)
                workers.map_tasks(fn, TASKS, n_workers, params.threads)
                rounds.append((hf_round, loop_round, time.perf_counter() - start))
        hf_seconds, loop_seconds, ours_seconds = (statistics.median(r[i] for r in rounds) for i in range(3))
        rows = [("HF Trainer", hf_seconds), ("synthmix loop, 1 process", loop_seconds),
                (f"synthmix stage, {n_workers} workers", ours_seconds)]
        for name, seconds in rows:
            rate = n_tokens / seconds
            flops = 6 * n_params * rate / 1e9
            print(f"{size:<7}{n_params / 1e6:>7.2f}M  {name:<22}{seconds:>8.1f}{rate:>10.0f}"
                  f"{flops / peaks['fp32']:>10.0%}{flops / peaks['bf16']:>10.0%}")
        loop_ratios.append(hf_seconds / loop_seconds)
        ratios.append(hf_seconds / ours_seconds)
        spread = ""
        if len(rounds) > 1:
            per_round = [hf / ours for hf, _, ours in rounds]
            spread = f" (medians of {len(rounds)} rounds; rounds' stage ratios {min(per_round):.2f}-{max(per_round):.2f}x)"
        print(f"{size:<7}speedup: loop alone {loop_ratios[-1]:.2f}x, train stage {ratios[-1]:.2f}x{spread}\n")
    print(f"train loop alone (one process) vs HF Trainer: {min(loop_ratios):.2f}x")
    print(f"train speedup vs HF Trainer: {min(ratios):.2f}x")


if __name__ == "__main__":
    main()
