"""Stage `pretrain`: a ladder size's base model, pretrained on a corpus of the task worlds in prose.

The paper fine-tunes pretrained Pythia; the built-in study's equivalent of the Pile is a corpus
each built-in task family writes about its world (`TaskFamily.corpus`): the facts about its
generated entities (factual's people and companies, commonsense's objects), arithmetic (math),
passages about other people (reading) and whole functions (code). It is disjoint from every
fine-tuning and test item, as the Pile is from the benchmarks, and it is where the closed-book
facts a test question asks are learnt: fine-tuning never shows them.

The stage reads `model`, `tokenizer` and `pretrain` only: neither `ratio`, nor the experiment's
`seed`, nor `tasks` reruns it, so one base per size serves every experiment through DVC's
run-cache and the team's remote. It writes

- ``models/base/<size>``: the model and its byte-level BPE tokenizer (trained on the corpus), a
  `from_pretrained` directory like a hub checkpoint; phase 0 fine-tunes it;
- ``metrics/pretrain/<size>.json``: the corpus (documents and tokens per family, passes) and the
  run (loss, steps, seconds, tokens/s); ``metrics/pretrain/<size>/``: the loss curve (dvclive).

The corpus is `pretrain.passes` passes over every family's world, each worded afresh from
`pretrain.seed` (more passes are more paraphrases, not copies), shuffled, packed `pretrain.pack`
documents to a sequence, and trained on for one epoch with the loss on every token. Training is
`synthmix.train.fine_tune`'s loop, so a killed pretraining resumes from its last checkpoint.

A `model` that is not a ladder size (Pythia under `profile: paper`) is pretrained already: the
stage then writes only a note saying so.
"""

from __future__ import annotations

import math
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from synthmix import checkpoints, modeling, paths
from synthmix.params import Params, TrainParams
from synthmix.records import write_json
from synthmix.tasks import get_task, task_names
from synthmix.tokenizer import EOS, train_tokenizer

SCRATCH = checkpoints.SCRATCH.parent / "pretrain"


def corpus(params: Params) -> list[tuple[str, str]]:
    """(family, document) pairs: `pretrain.passes` passes over every built-in family's world (a
    family's `pretrain.repeats` times in each), shuffled; the same for every experiment (only
    `pretrain.seed` words it)."""
    cfg = params.pretrain
    rng = random.Random(f"synthmix-pretrain:{cfg.seed}")
    docs: list[tuple[str, str]] = []
    families = [get_task(name) for name in task_names()]
    for _ in range(math.ceil(cfg.passes)):
        for family in families:
            for _ in range(cfg.repeats.get(family.name, 1)):  # each time in new words
                docs.extend((family.name, doc) for doc in family.corpus(rng))
    rng.shuffle(docs)
    return docs[: round(len(docs) * cfg.passes / math.ceil(cfg.passes))]


def sequences(docs: list[str], pack: int) -> list[dict[str, str]]:
    """Training rows: `pack` documents a row, joined by EOS (the loss is on every token)."""
    return [{"prompt": "", "completion": EOS.join(docs[i:i + pack])} for i in range(0, len(docs), pack)]


def train_params(params: Params) -> TrainParams:
    """The pretraining run as `fine_tune` takes it: one epoch, the loss on the whole sequence."""
    shared = params.pretrain.model_dump(include=set(TrainParams.model_fields))  # batch, lr, warmup...
    return TrainParams(**shared, epochs=1, loss_on="sequence")


def scratch_dir(params: Params) -> Path:
    """Resume space, keyed by what the base depends on (the params it reads and this code)."""
    parts = {"model": params.model, "tokenizer": params.tokenizer.model_dump(),
             "pretrain": params.pretrain.model_dump(exclude={"checkpoint_every"})}
    return SCRATCH / f"{params.model}-{checkpoints.task_key(parts, [Path(__file__)])}"


def run(params: Params, size: str | None = None) -> None:
    """Pretrain the ladder size `size` (default: `model`) into models/base/<size>.

    dvc.yaml passes params.yaml's top-level `model`, which a profile does not change: under
    `profile: paper` (Pythia) the tiny base is still what models/base/tiny holds."""
    from synthmix.train import fine_tune  # torch and accelerate: after the CLI has parsed its options

    size = size or params.model
    out = paths.base(size)
    if size not in modeling.LADDER_SHAPES:
        out.mkdir(parents=True, exist_ok=True)
        note = {"model": size, "pretrained": "elsewhere: loaded with from_pretrained, not trained here"}
        write_json(out / "source.json", note)
        write_json(paths.pretrain_summary(size), note)
        print(f"pretrain: {size} is not a ladder size; it comes pretrained (nothing to do)")
        return
    if size != params.model:
        params = params.model_copy(update={"model": size})
    cfg = params.pretrain
    owned = corpus(params)
    docs = [doc for _, doc in owned]
    per_family = dict(sorted(Counter(name for name, _ in owned).items()))
    tokenizer = train_tokenizer(iter(docs[: max(1, round(len(docs) / cfg.passes))]), params.tokenizer.vocab_size)
    rows = sequences(docs, cfg.pack)
    model = modeling.ladder_model(params.model, tokenizer, cfg.seed)
    n_params = modeling.count_parameters(model)
    print(f"pretrain {params.model}: {len(docs)} documents ({', '.join(f'{k} {v}' for k, v in per_family.items())}) "
          f"in {len(rows)} sequences, {n_params / 1e6:.2f}M params", file=sys.stderr)
    scratch = scratch_dir(params)
    summary: dict[str, Any] = fine_tune(
        model, tokenizer, rows, train_params(params), cfg.seed, paths.pretrain_log(params.model),
        desc=f"pretrain {params.model}", save_to=out, checkpoint_dir=scratch,
    )
    # tokens per family, from a sample of the corpus (tokenizing all of it again is slow)
    sample = random.Random(0).sample(owned, min(len(owned), 3000))
    tokens: Counter[str] = Counter()
    for name, doc in sample:
        tokens[name] += len(tokenizer(doc)["input_ids"])
    write_json(paths.pretrain_summary(params.model), {
        **summary, "parameters": n_params, "passes": cfg.passes, "repeats": dict(cfg.repeats), "documents": len(docs), "sequences": len(rows),
        "documents_per_family": per_family,
        "tokens_per_family_estimate": {k: round(v * len(owned) / len(sample)) for k, v in sorted(tokens.items())},
        "vocab_size": len(tokenizer), "threads": torch.get_num_threads(),
    })
    checkpoints.clear_dir(scratch)
    print(f"pretrain {params.model}: loss {summary['final_loss']:.3f} after {summary['steps']} steps "
          f"({summary['seconds']:.0f} s, {summary['tokens_per_second']:.0f} tokens/s) -> {out}")
