"""Stage `evaluate`: score every task's model of an iteration on the external test split.

Per task: the task score (the family's own rules), ECE at each of `evaluate.ece_bins` with its
reliability-diagram rows, and the diversity (Self-BLEU, Distinct-1/2) of completions sampled at
the generation temperature. Every test example's prediction, gold answer, correctness and
confidence goes to data/predictions/ for error analysis.

Confidence: for multiple choice, the softmax over the choices' log-likelihoods (per token, or summed
for a YAML task as lm-eval's `acc` picks: `TaskFamily.choice_reduction`), max taken; for generated answers, the geometric mean of the probabilities of the greedy
completion's tokens (see `inference.Generation`).

Under `accelerate launch` (`accelerate.num_processes` > 1) the test prompts are split between the
processes and gathered back in order; the main process scores them and writes every file. The
batches are the ones a single process would run, so the metrics do not depend on the number of
processes (see `synthmix.distributed`).
"""

from __future__ import annotations

import functools
import math
import random
from typing import Any

from synthmix import distributed, inference, metrics, modeling, paths, workers
from synthmix.params import Params
from synthmix.records import read_jsonl, write_json, write_jsonl
from synthmix.tasks import Example, TaskFamily


def _softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    total = sum(exps)
    return [e / total for e in exps]


def predict(model, tokenizer, task: TaskFamily, examples: list[Example], batch_size: int, desc: str,
            max_new_tokens: int | None = None) -> tuple[list[str], list[float]]:
    """The model's answer text and its confidence for every example (generated answers take at most
    `max_new_tokens` new tokens; None: the family's default)."""
    prompts = [ex["prompt"] for ex in examples]
    if task.kind == "choice":
        options = [task.choices(ex) for ex in examples]
        loglik = inference.choice_logprobs(model, tokenizer, prompts, options, batch_size=batch_size, desc=desc,
                                           reduction=task.choice_reduction)
        probs = [_softmax(row) for row in loglik]
        picks = [max(range(len(p)), key=p.__getitem__) for p in probs]
        return [opts[k] for opts, k in zip(options, picks)], [p[k] for p, k in zip(probs, picks)]
    gens = inference.generate(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens or task.max_new_tokens, batch_size=batch_size,
        desc=desc,
    )
    return [task.stop(g.text) for g in gens], [g.confidence for g in gens]


#: resamples for a score's standard error when it is not a mean over items (e.g. a binary F1)
SE_RESAMPLES = 200


def item_scores(task: TaskFamily, scored: list) -> list[float]:
    """Each test item's contribution to the headline score: its sub-metric of that name where the
    family reports one per item (reading's token F1), else its 0/1 correctness."""
    return [float(s.extra.get(task.score_name, s.correct)) for s in scored]


def standard_error(task: TaskFamily, examples: list[Example], scored: list, score: float, seed: int) -> float:
    """The headline score's standard error over test items: the sample standard deviation of the
    item scores over sqrt(n) when the score is their mean (accuracy, exact match, pass@1, F1 of
    SQuAD), else the standard deviation of the score over `SE_RESAMPLES` bootstrap resamples of the
    items (a score aggregated otherwise, such as a YAML task's binary F1)."""
    n = len(scored)
    if n < 2:
        return float("nan")
    values = item_scores(task, scored)
    mean = sum(values) / n
    if abs(mean - score) < 1e-9:
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    rng = random.Random(f"synthmix-se:{seed}")
    boots = []
    for _ in range(SE_RESAMPLES):
        pick = [rng.randrange(n) for _ in range(n)]
        boots.append(task.summarize([examples[i] for i in pick], [scored[i] for i in pick])[task.score_name])
    centre = sum(boots) / len(boots)
    return math.sqrt(sum((b - centre) ** 2 for b in boots) / (len(boots) - 1))


def diversity(texts: list[str], max_samples: int, seed: int) -> dict[str, float]:
    """Self-BLEU and Distinct-1/2 of a set of generations."""
    bleu = metrics.load("self_bleu").compute(predictions=texts, max_samples=max_samples, seed=seed)
    distinct = metrics.load("distinct_n").compute(predictions=texts)
    return {"self_bleu": bleu["self_bleu"], "distinct_1": distinct["distinct_1"], "distinct_2": distinct["distinct_2"]}


def evaluate_task(params: Params, iteration: int, task: TaskFamily) -> tuple[dict[str, Any], list[dict], dict] | None:
    """(metrics, per-example prediction rows, reliability rows per bin count) of one task.

    Every process takes part in the model's work; only the main process scores and gets the
    result (the others get None).
    """
    cfg = params.evaluate
    model = modeling.load_model(iteration, task.name, dtype=distributed.DTYPES[cfg.dtype], device=distributed.device())
    tokenizer = modeling.load_tokenizer(paths.model(iteration, task.name))
    examples = read_jsonl(paths.external(task.name, "test"))
    budget = params.generation_budget(task)
    if task.kind == "generate" and distributed.is_main_process():
        inference.warn_if_over_budget(task.name, tokenizer, examples, budget, "test")
    texts, confidences = predict(model, tokenizer, task, examples, cfg.batch_size,
                                 f"iter{iteration}/{task.name} answer", max_new_tokens=budget)

    # Diversity of what the model writes when sampling as it does for synthetic data.
    sampled_on = examples[: cfg.diversity_samples]
    samples = inference.generate(
        model,
        tokenizer,
        [ex["prompt"] for ex in sampled_on],
        max_new_tokens=budget,
        batch_size=params.generate.batch_size,
        sample=True,
        temperature=params.generate.temperature,
        top_p=params.generate.top_p,
        seed=params.seed + iteration,
        desc=f"iter{iteration}/{task.name} sample",
    )
    del model
    if not distributed.is_main_process():
        return None

    scored = task.score(examples, texts)
    summary = task.summarize(examples, scored)
    correct = [int(s.correct) for s in scored]
    result: dict[str, Any] = {"score": summary[task.score_name], **summary}
    result["score_se"] = standard_error(task, examples, scored, result["score"], params.seed + iteration)
    reliability = {}
    ece = metrics.load("ece")
    for n_bins in cfg.ece_bins:
        out = ece.compute(confidences=confidences, correct=correct, n_bins=n_bins)
        result[f"ece_{n_bins}"] = out["ece"]
        reliability[n_bins] = out["reliability"]
    result["ece"] = result[f"ece_{cfg.ece_bins[0]}"]  # the headline (10 bins by default)
    result["mean_confidence"] = sum(confidences) / len(confidences)
    result.update(diversity([task.stop(g.text) for g in samples], cfg.diversity_samples, params.seed))
    result["n_test"] = len(examples)

    rows = [
        {
            "id": ex["id"],
            "prompt": ex["prompt"],
            "gold": ex["completion"],
            "prediction": text,
            "extracted": s.extracted,
            "correct": bool(s.correct),
            "score": item,
            "confidence": conf,
            **s.extra,
        }
        for ex, text, s, conf, item in zip(examples, texts, scored, confidences, item_scores(task, scored))
    ]
    return result, rows, reliability


def _evaluate_named(params: Params, iteration: int, name: str):
    return evaluate_task(params, iteration, params.task(name))  # configured: e.g. code's sandbox limits


def run(params: Params, iteration: int) -> None:
    """Evaluate every task's model of `iteration`; write metrics, reliability data and predictions.

    On a CPU the tasks are scored side by side in `workers.count` forked processes, as train's are
    (a ladder model's matrices do not fill two cores); under `accelerate launch` every process
    takes part in every task, one after the other."""
    # nothing here touches a tensor before the fork (see synthmix.workers)
    evaluations = workers.run_tasks(params, functools.partial(_evaluate_named, params, iteration),
                                    first=[name for name in params.tasks if params.task(name).runs_programs],
                                    cost=workers.generation_cost(params, "test"))
    scores: dict[str, Any] = {}
    reliability_rows: dict[int, list[dict[str, Any]]] = {n: [] for n in params.evaluate.ece_bins}
    for name, evaluated in zip(params.tasks, evaluations):
        task = params.task(name)
        if evaluated is None:  # not the main process: its share is done
            continue
        result, rows, reliability = evaluated
        scores[name] = result
        write_jsonl(paths.predictions(iteration, name), rows)
        for n_bins, bins in reliability.items():
            for b in bins:
                if b["count"]:
                    reliability_rows[n_bins].append({"task": name, "iteration": iteration, **b})
        print(
            f"iter{iteration}/{name}: {task.score_name}={result['score']:.3f} (SE {result['score_se']:.3f}) ECE={result['ece']:.3f} "
            f"self-BLEU={result['self_bleu']:.3f} distinct-2={result['distinct_2']:.3f}"
        )
    if distributed.is_main_process():
        write_json(paths.scores(iteration), scores)
        for n_bins, rows in reliability_rows.items():
            write_json(paths.reliability(iteration, n_bins), rows)
    distributed.barrier()
