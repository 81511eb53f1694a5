"""Batched model inference shared by evaluation and synthetic-data generation.

Two primitives: the length-normalised log-likelihood of candidate completions (multiple choice),
and batched generation (greedy or sampled) that also returns how probable the model found the
tokens it produced. Prompts are left-padded with an attention mask; batches are sorted by prompt
length so little compute goes to padding.

Under `accelerate launch` (several processes) each process runs its share of the batches (the
same batches one process would run) and the results are gathered back into input order on every
process (`synthmix.distributed`). Sampled batches are seeded by their number, so what is sampled
does not depend on the number of processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from synthmix import distributed


@dataclass(frozen=True)
class Generation:
    """One generated completion and the model's confidence in it.

    ``confidence`` is length-normalised: the geometric mean of the probabilities of the generated
    tokens (EOS included when the model stopped), i.e. exp(mean token log-probability). Under
    greedy decoding it is the probability the model gave to its own answer, per token.
    """

    text: str
    confidence: float
    token_ids: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)


def _length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def over_budget(tokenizer, examples: Sequence[dict], budget: int) -> tuple[float, int]:
    """(share of `examples` whose gold completion, with its EOS, needs more than `budget` new tokens;
    the longest one's token count): a completion cut at the budget loses its end (math's "####" line,
    the rest of a code body), so a budget below the gold lengths caps the score."""
    if not examples:
        return 0.0, 0
    ids = tokenizer([ex["completion"] for ex in examples], add_special_tokens=False)["input_ids"]
    lengths = [len(t) + 1 for t in ids]  # + EOS, which ends a generation before the budget does
    return sum(n > budget for n in lengths) / len(lengths), max(lengths)


def warn_if_over_budget(task: str, tokenizer, examples: Sequence[dict], budget: int, split: str) -> None:
    """Print a note when gold completions of `split` are longer than the generation budget."""
    share, longest = over_budget(tokenizer, examples, budget)
    if share:
        print(f"note: {share:.1%} of {task}'s gold {split} completions are longer than its generation budget "
              f"of {budget} tokens (the longest: {longest}); generations that long are cut there. Raise "
              f"max_new_tokens.{task} in params.yaml (or the profile's).")


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int = 64,
    sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    desc: str = "generate",
) -> list[Generation]:
    """Complete every prompt (greedy, or nucleus sampling at `temperature`/`top_p`), in input order.

    Batch b is sampled from seed `distributed.batch_seed(seed, b)`: the same prompts, batches and
    seeds whichever process (and however many) runs it.
    """
    model.eval()
    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    results: list[tuple[int, Generation]] = []
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if sample else {"do_sample": False}
    batches = _length_sorted_batches([len(e) for e in encoded], batch_size)
    for b in tqdm(distributed.my_share(len(batches)), desc=desc, unit="batch", leave=False,
                  disable=not distributed.is_main_process()):
        batch = batches[b]
        torch.manual_seed(distributed.batch_seed(seed, b))
        inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt").to(device)
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            output_logits=True,
            return_dict_in_generate=True,
            top_k=None,
            **sampling,
        )
        new_tokens = out.sequences[:, inputs["input_ids"].shape[1] :]
        # Raw logits, not the processed scores: confidence is the model's own probability, not the
        # temperature/top-p sampler's.
        logprobs = model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
        for row, index in enumerate(batch):
            tokens = new_tokens[row].tolist()
            # Keep tokens up to and including the first EOS; what follows is padding.
            length = tokens.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in tokens else len(tokens)
            lp = logprobs[row, :length].float()
            confidence = float(torch.exp(lp.mean())) if length else 0.0
            text = tokenizer.decode(tokens[:length], skip_special_tokens=True)
            results.append((index, Generation(text=text, confidence=confidence, token_ids=tuple(tokens[:length]))))
    return distributed.gather_in_order(results, len(prompts))


@torch.no_grad()
def choice_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    choices: Sequence[Sequence[str]],
    *,
    batch_size: int = 64,
    desc: str = "score choices",
) -> list[list[float]]:
    """Mean per-token log-likelihood of each candidate completion given its prompt."""
    model.eval()
    device = next(model.parameters()).device
    pairs: list[tuple[int, list[int], list[int]]] = []
    for i, (prompt, options) in enumerate(zip(prompts, choices)):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for option in options:
            pairs.append((i, prompt_ids, tokenizer(option, add_special_tokens=False)["input_ids"]))
    local: list[tuple[int, float]] = []
    batches = _length_sorted_batches([len(p) + len(c) for _, p, c in pairs], batch_size)
    for b in tqdm(distributed.my_share(len(batches)), desc=desc, unit="batch", leave=False,
                  disable=not distributed.is_main_process()):
        batch = batches[b]
        seqs = [pairs[j][1] + pairs[j][2] for j in batch]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        for r, j in enumerate(batch):
            start, end = len(pairs[j][1]), len(seqs[r])
            targets = ids[r, start:end].to(device)
            token_lp = logp[r, start - 1 : end - 1].gather(-1, targets[:, None]).squeeze(-1)
            local.append((j, float(token_lp.mean())))
    scores = distributed.gather_in_order(local, len(pairs))
    out: list[list[float]] = [[] for _ in prompts]
    for (i, _, _), s in zip(pairs, scores):
        out[i].append(s)
    return out
