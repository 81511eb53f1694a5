"""A randomly initialised GPT-NeoX with Pythia's configuration, scaled down, saved like a hub checkpoint.

The config is EleutherAI/pythia-410m's config.json (the legacy keys the hub file has: rotary_pct,
rotary_emb_base, use_parallel_residual, untied embeddings, gelu), with only the widths shrunk and
the vocabulary taken from a small byte-level BPE (padded up to a multiple of 128, as Pythia's
50304-row embedding is for its 50277-token tokenizer). The tokenizer, like Pythia's, has
<|endoftext|> as BOS/EOS/UNK and no pad token. `model: <this dir>` then takes exactly the
from_pretrained path a hub id takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from synthmix.tokenizer import train_tokenizer

#: EleutherAI/pythia-410m config.json (hub revision main), verbatim but for the marked widths
PYTHIA_410M = {
    "architectures": ["GPTNeoXForCausalLM"],
    "bos_token_id": 0,
    "eos_token_id": 0,
    "hidden_act": "gelu",
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 4096,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 2048,
    "model_type": "gpt_neox",
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "rotary_emb_base": 10000,
    "rotary_pct": 0.25,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "use_cache": True,
    "use_parallel_residual": True,
    "vocab_size": 50304,
}

#: the scaled-down widths (4 heads of 16: rotary on 25% of each head = 4 dims, as in Pythia)
TINY_WIDTHS = {"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 4, "num_hidden_layers": 2,
               "max_position_embeddings": 512, "torch_dtype": "float32"}


def make_pythia_dir(path: Path, texts: Iterable[str], vocab_size: int = 400, seed: int = 0) -> Path:
    """Save a scaled-down random Pythia (config + safetensors + tokenizer) to `path`."""
    bpe = train_tokenizer(texts, vocab_size)  # <|endoftext|> = 0, <|padding|> = 1, as in Pythia's vocabulary
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe.backend_tokenizer, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", unk_token="<|endoftext|>")  # no pad token, as Pythia
    assert tok.pad_token is None and tok.eos_token_id == 0
    config = {**PYTHIA_410M, **TINY_WIDTHS, "vocab_size": -(-len(tok) // 128) * 128}
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    model.save_pretrained(path)
    # save_pretrained rewrites config.json in transformers' current format; put the hub's legacy
    # one back, so that loading also goes through the conversion a real Pythia download needs
    (path / "config.json").write_text(json.dumps(config, indent=2))
    tok.save_pretrained(path)
    return path
