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
from typing import Literal

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from synthmix import distributed, modeling, sampling


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
def decode(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    eos_token_id: int,
    sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy or nucleus decoding of a left-padded batch with a KV cache.

    Returns (new token ids (batch, max_new_tokens), their log-probabilities under the model's raw
    logits, the number of tokens of each row up to and including its first EOS). What
    `GenerationMixin.generate` does for this case, with two savings: the sampler takes the top
    candidates instead of sorting the vocabulary (`synthmix.sampling`), and rows that have ended
    leave the batch (their cache rows with them) once a quarter of it has ended, instead of being
    computed to the end of the longest row.
    """
    batch, device = input_ids.shape[0], input_ids.device
    tokens = torch.full((batch, max_new_tokens), eos_token_id, dtype=torch.long, device=device)
    logprobs = torch.zeros((batch, max_new_tokens), dtype=torch.float32, device=device)
    lengths = torch.full((batch,), max_new_tokens, dtype=torch.long, device=device)
    if max_new_tokens <= 0:
        return tokens[:, :0], logprobs[:, :0], lengths.zero_()
    rows = torch.arange(batch, device=device)  # the original row of each row still decoding
    ended = torch.zeros(batch, dtype=torch.bool, device=device)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, cache=cache,
                use_cache=True, logits_to_keep=1)
    mask, last_position = attention_mask, positions[:, -1]
    for step in range(max_new_tokens):
        logits = out.logits[:, -1].float()
        if sample:
            chosen = sampling.sample(logits, temperature, top_p, generator)
        else:
            chosen = logits.argmax(-1)
        tokens[rows, step] = chosen
        logprobs[rows, step] = torch.log_softmax(logits, -1).gather(1, chosen[:, None]).squeeze(1)
        now_ended = (chosen == eos_token_id) & ~ended
        lengths[rows[now_ended]] = step + 1
        ended |= now_ended
        if step == max_new_tokens - 1 or bool(ended.all()):
            break
        if int(ended.sum()) * 4 >= len(rows):  # compact: a quarter of the rows are computing padding
            alive = (~ended).nonzero(as_tuple=True)[0]
            cache.batch_select_indices(alive)
            rows, chosen, mask, last_position = rows[alive], chosen[alive], mask[alive], last_position[alive]
            ended = ended[alive]
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
        last_position = last_position + 1
        out = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=last_position[:, None],
                    cache=cache, use_cache=True)
    return tokens, logprobs, lengths


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
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    results: list[tuple[int, Generation]] = []
    batches = _length_sorted_batches([len(e) for e in encoded], batch_size)
    for b in tqdm(distributed.my_share(len(batches)), desc=desc, unit="batch", leave=False,
                  disable=not distributed.is_main_process()):
        batch = batches[b]
        generator = torch.Generator(device=device).manual_seed(distributed.batch_seed(seed, b))
        # padding_side per call: the tokenizer object is shared with training, which pads on the right
        inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, padding_side="left",
                               return_tensors="pt").to(device)
        new_tokens, logprobs, lengths = decode(
            model, inputs["input_ids"], inputs["attention_mask"], max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id, sample=sample, temperature=temperature, top_p=top_p,
            generator=generator,
        )
        # the mean log-probability of each answer's tokens (EOS included when it ended)
        in_answer = torch.arange(logprobs.shape[1], device=device)[None] < lengths[:, None]
        confidences = ((logprobs * in_answer).sum(-1) / lengths.clamp(min=1)).exp().tolist()
        new_tokens, lengths = new_tokens.tolist(), lengths.tolist()
        for row, index in enumerate(batch):
            n = lengths[row]
            kept = new_tokens[row][:n]
            confidence = confidences[row] if n else 0.0
            text = tokenizer.decode(kept, skip_special_tokens=True)
            results.append((index, Generation(text=text, confidence=confidence, token_ids=tuple(kept))))
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
    reduction: Literal["mean", "sum"] = "mean",
) -> list[list[float]]:
    """Log-likelihood of each candidate completion given its prompt: per token ("mean") or of the
    whole continuation ("sum", lm-evaluation-harness's `acc`)."""
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
        rows, cols = [], []  # the positions that predict a choice token (and the row each is in)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
            start = len(pairs[batch[r]][1])
            rows += [r] * (len(s) - start)
            cols += range(start - 1, len(s) - 1)
        rows_t, cols_t = torch.tensor(rows, device=device), torch.tensor(cols, device=device)
        # the output layer only where a choice token is predicted (modeling.logits_at)
        logits = modeling.logits_at(model, ids.to(device), mask.to(device), rows_t, cols_t).float()
        targets = ids.to(device)[rows_t, cols_t + 1]
        token_lp = torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1)
        sums = torch.zeros(len(seqs), device=device).index_add_(0, rows_t, token_lp)
        counts = torch.zeros(len(seqs), device=device).index_add_(0, rows_t, torch.ones_like(token_lp))
        per_row = sums if reduction == "sum" else sums / counts.clamp(min=1)
        for r, value in enumerate(per_row.tolist()):
            local.append((batch[r], value))
    scores = distributed.gather_in_order(local, len(pairs))
    out: list[list[float]] = [[] for _ in prompts]
    for (i, _, _), s in zip(pairs, scores):
        out[i].append(s)
    return out
