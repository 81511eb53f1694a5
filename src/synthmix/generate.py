"""Stage `generate`: sample an iteration's synthetic training data from the previous model.

Two modes (`generate.mode`):

- ``answers`` (default): the model answers the external training prompts, and its sampled answer
  replaces the gold one: self-training as in STaR, without STaR's correctness filter (the paper
  applies no quality filtering). The prompts stay human-made; only answers are synthetic, which
  is the setting the paper's degradation numbers describe.
- ``instances``: the model writes whole new examples from a short task prefix, as Self-Instruct
  does; the task family parses them back into its schema (unparseable ones are kept, flagged).

Every sample records where it came from (generating model, sampling params, source prompt), and
the set records the same in `meta.json`, so a synthetic dataset is traceable on its own.

Under `accelerate launch` (`accelerate.num_processes` > 1) every process loads the model, samples
its share of the batches, and the main process writes the gathered set (see `synthmix.distributed`).
"""

from __future__ import annotations

import functools
import hashlib
import random
from pathlib import Path
from typing import Any

from synthmix import distributed, gate, inference, modeling, paths, quality, workers
from synthmix.params import Params
from synthmix.records import read_jsonl, write_json, write_jsonl
from synthmix.tasks import Example, TaskFamily

#: extra generation budget in `instances` mode, where the model also writes the prompt
INSTANCE_PROMPT_TOKENS = 96


def checkpoint_digest(path: Path) -> str:
    """SHA-256 of a checkpoint's weights: which exact model wrote a synthetic set."""
    digest = hashlib.sha256()
    for weights in sorted(path.glob("*.safetensors")):
        with weights.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _answers(task: TaskFamily, external: list[Example], texts: list[str], origin: dict[str, Any]) -> list[Example]:
    rows = []
    for k, text in enumerate(texts):
        source = external[k % len(external)]
        rows.append({**source, "id": f"{task.name}-syn{origin['iteration']}-{k:06d}", "completion": text,
                     "origin": {**origin, "source_id": source["id"]}})
    return rows


def _instances(task: TaskFamily, prefixes: list[str], texts: list[str], origin: dict[str, Any]) -> list[Example]:
    rows = []
    for k, (prefix, text) in enumerate(zip(prefixes, texts)):
        parsed = task.parse_instance(prefix + text)
        row = parsed if parsed is not None else {"prompt": prefix, "completion": text}
        rows.append({**row, "id": f"{task.name}-syn{origin['iteration']}-{k:06d}",
                     "origin": {**origin, "parsed": parsed is not None}})
    return rows


def generate_task(params: Params, iteration: int, task: TaskFamily, prev: int) -> list[Example]:
    """Sample `generate.size_factor` x (external train size) synthetic examples of `task`."""
    cfg = params.generate
    model_dir = paths.model(prev, task.name)
    model = modeling.load_model(prev, task.name, dtype=distributed.DTYPES[cfg.dtype], device=distributed.device())
    tokenizer = modeling.load_tokenizer(model_dir)
    external = read_jsonl(paths.external(task.name, "train"))
    n = round(cfg.size_factor * len(external))
    # only the main process writes the set: the others need not hash the weights (12B: 48 GB)
    digest = checkpoint_digest(model_dir) if distributed.is_main_process() else ""
    budget = params.generation_budget(task)
    origin = {"iteration": iteration, "model": str(model_dir), "model_sha256": digest,
              "mode": cfg.mode, "temperature": cfg.temperature, "top_p": cfg.top_p, "max_new_tokens": budget}
    if cfg.mode == "answers":
        prompts = [external[k % len(external)]["prompt"] for k in range(n)]
        if distributed.is_main_process():
            inference.warn_if_over_budget(task.name, tokenizer, external, budget, "train")
    else:
        rng = random.Random(f"{task.name}:instances:{params.seed}:{iteration}")
        prompts = [task.instance_prompt(rng) for _ in range(n)]
        budget += INSTANCE_PROMPT_TOKENS
    def sample(which: list[int], attempt: int) -> list[str]:
        gens = inference.generate(
            model, tokenizer, [prompts[i] for i in which], max_new_tokens=budget, batch_size=cfg.batch_size,
            sample=True, temperature=cfg.temperature, top_p=cfg.top_p,
            # attempt 1 is the paper's single draw; each redraw has seeds of its own
            seed=params.seed + 1000 * iteration + 1_000_003 * (attempt - 1),
            desc=f"iter{iteration}/{task.name} sample" + (f" (attempt {attempt})" if attempt > 1 else ""),
        )
        return [task.stop(g.text) for g in gens]

    def rows_of(texts: list[str]) -> list[Example]:
        if cfg.mode == "answers":
            return _answers(task, external, texts, origin)
        return _instances(task, prompts, texts, origin)

    texts = sample(list(range(n)), 1)
    if cfg.max_attempts == 1:
        return rows_of(texts)
    # Rejection sampling: redraw what fails its verifier (the main process judges; all sample)
    attempts = [1] * n
    for attempt in range(2, cfg.max_attempts + 1):
        verified = quality.verify(task, rows_of(texts), external, cfg.mode) if distributed.is_main_process() else None
        pending = [i for i, ok in enumerate(distributed.from_main(verified)) if not ok]
        if not pending:
            break
        for i, text in zip(pending, sample(pending, attempt)):
            texts[i], attempts[i] = text, attempt
    rows = rows_of(texts)
    for row, used in zip(rows, attempts):
        row["origin"]["attempts"] = used  # the draw this sample is (1 = the first)
    return rows


def preflight(params: Params, iteration: int) -> int:
    """Checked before relaunching under `accelerate launch`: 3 when the gate halts (see `run`)."""
    return gate.enforce(params, iteration - 1) if iteration >= 1 else 0


def _generate_named(params: Params, iteration: int, prev: int, name: str) -> list[Example]:
    return generate_task(params, iteration, params.task(name), prev)


def run(params: Params, iteration: int) -> int:
    """Write data/synthetic/raw/iter<iteration>/<task>.jsonl for every task, plus meta.json."""
    if iteration < 1:
        raise ValueError("generate runs for iterations >= 1 (iteration 0 trains on external data only)")
    prev = iteration - 1
    halted = gate.enforce(params, prev)
    if halted:
        return halted
    # On a CPU the tasks sample side by side in forked workers, as train's are trained (nothing here
    # touches a tensor before the fork: see synthmix.workers); each batch is seeded by its number,
    # so the samples are the same either way.
    sampled = workers.run_tasks(params, functools.partial(_generate_named, params, iteration, prev),
                                cost=workers.generation_cost(params, "train"))  # the most tokens to sample first
    main = distributed.is_main_process()
    meta = {"iteration": iteration, "from_iteration": prev, "mode": params.generate.mode,
            "temperature": params.generate.temperature, "top_p": params.generate.top_p,
            "seed": params.seed, "tasks": {},
            "max_new_tokens": {name: params.generation_budget(params.task(name)) for name in params.tasks}}
    for name, rows in zip(params.tasks, sampled):
        if not main:
            continue
        write_jsonl(paths.synthetic_raw(iteration, name), rows)
        meta["tasks"][name] = {"samples": len(rows), "model": rows[0]["origin"]["model"] if rows else None,
                               "model_sha256": rows[0]["origin"]["model_sha256"] if rows else None}
        if params.generate.max_attempts > 1:
            used = [r["origin"]["attempts"] for r in rows]
            meta["tasks"][name].update(max_attempts=params.generate.max_attempts,
                                       draws=sum(used), mean_attempts=sum(used) / max(len(used), 1))
        print(f"iter{iteration}/{name}: {len(rows)} synthetic samples ({params.generate.mode})")
    if main:
        write_json(paths.synthetic_meta(iteration), meta)
    distributed.barrier()
    return 0
