"""Sampling throughput: synthmix's decoder against plain HF `generate`, side by side in one run.

    python benchmarks/bench_generate.py                   # tiny, batch 256, 48 new tokens
    python benchmarks/bench_generate.py --size small --batch-size 64

A ladder model is first trained for one epoch on built-in examples (a random model's next-token
distribution is nearly flat, which no study samples from), then both paths complete the same
prompts (the five families' training prompts) in the same length-sorted batches with the same
sampling params (temperature 0.8, top-p 0.9, no top-k):

- synthmix: `inference.generate`, which also returns each completion's confidence;
- HF: `model.generate(do_sample=True, temperature=, top_p=, top_k=None)` with left-padded prompts
  and an attention mask, nothing else asked of it.

Throughput is new tokens (up to and including each row's first EOS) per second of wall time. The
last line is the ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

from synthmix import inference, modeling  # noqa: E402
from synthmix.params import load_params  # noqa: E402
from synthmix.tasks import get_task  # noqa: E402
from synthmix.tokenizer import train_tokenizer  # noqa: E402
from synthmix.train import fine_tune  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["commonsense", "math", "factual", "reading", "code"]


def hf_generate(model, tokenizer, prompts, batches, args) -> int:
    """New tokens sampled by plain HF generate over `batches` (lists of prompt indices)."""
    tokenizer.padding_side = "left"
    eos = tokenizer.eos_token_id
    total = 0
    for b, batch in enumerate(batches):
        torch.manual_seed(b)
        inputs = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        out = model.generate(**inputs, do_sample=True, temperature=args.temperature, top_p=args.top_p, top_k=None,
                             max_new_tokens=args.max_new_tokens, pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
        for row in out[:, inputs["input_ids"].shape[1]:].tolist():
            total += row.index(eos) + 1 if eos in row else len(row)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", help="ladder size (default tiny)")
    parser.add_argument("--prompts", type=int, default=1024, help="prompts to complete (default 1024)")
    parser.add_argument("--batch-size", type=int, default=256, help="prompts per batch (default 256, generate.batch_size)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="generation budget (default 48)")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--train-examples", type=int, default=2000, help="examples of the one-epoch warm-up training")
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml").model_copy(update={"model": args.size})
    per_task = args.train_examples // len(TASKS)
    examples = [ex for name in TASKS for ex in get_task(name).build("train", per_task, params.seed)]
    tokenizer = train_tokenizer((ex["prompt"] + ex["completion"] for ex in examples), params.tokenizer.vocab_size)
    model = modeling.ladder_model(params.model, tokenizer, params.seed)
    with tempfile.TemporaryDirectory() as tmp:
        fine_tune(model, tokenizer, examples, params.train.model_copy(update={"epochs": 1}), params.seed, Path(tmp))
    model.eval()
    prompts = [examples[k % len(examples)]["prompt"] for k in range(args.prompts)]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    batches = inference._length_sorted_batches(lengths, args.batch_size)
    print(f"{args.size} ({modeling.count_parameters(model) / 1e6:.2f}M params), {len(prompts)} prompts in "
          f"{len(batches)} batches of {args.batch_size}, T {args.temperature}, top-p {args.top_p}, "
          f"max {args.max_new_tokens} new tokens, {torch.get_num_threads()} threads\n")

    rates = {}
    for name in ("HF generate", "synthmix"):
        start = time.perf_counter()
        if name == "synthmix":
            gens = inference.generate(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                                      batch_size=args.batch_size, sample=True, temperature=args.temperature,
                                      top_p=args.top_p, seed=params.seed)
            new_tokens = sum(g.n_tokens for g in gens)
        else:
            new_tokens = hf_generate(model, tokenizer, prompts, batches, args)
        seconds = time.perf_counter() - start
        rates[name] = new_tokens / seconds
        print(f"{name:<12}{seconds:>8.1f} s{new_tokens:>9} new tokens{rates[name]:>10.0f} tokens/s")
    print(f"\ngenerate speedup vs HF generate: {rates['synthmix'] / rates['HF generate']:.2f}x")


if __name__ == "__main__":
    main()
