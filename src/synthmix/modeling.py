"""The model ladder (Pythia's GPT-NeoX architecture at laptop sizes) and checkpoint loading.

`model` in params.yaml is either a ladder size (tiny, small, medium: ~1M, ~4M, ~12M parameters
with the default 2k-token vocabulary) or anything `AutoModelForCausalLM.from_pretrained` accepts
(a hub id such as EleutherAI/pythia-410m, or a local directory).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPTNeoXConfig, PreTrainedModel, PreTrainedTokenizerBase

from synthmix import paths
from synthmix.params import Params

#: (hidden size, layers, attention heads); Pythia's ratios: intermediate = 4 x hidden
LADDER_SHAPES: dict[str, tuple[int, int, int]] = {
    "tiny": (128, 4, 4),
    "small": (256, 4, 8),
    "medium": (384, 6, 6),
}


def ladder_config(size: str, vocab_size: int, eos_id: int, pad_id: int) -> GPTNeoXConfig:
    """Pythia's architecture flags (parallel residual, partial rotary, untied embeddings) at `size`."""
    hidden, layers, heads = LADDER_SHAPES[size]
    return GPTNeoXConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        hidden_act="gelu",
        rope_parameters={"rope_type": "default", "rope_theta": 10000, "partial_rotary_factor": 0.25},
        max_position_embeddings=512,
        use_parallel_residual=True,
        tie_word_embeddings=False,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


def load_tokenizer(path: Path | str) -> PreTrainedTokenizerBase:
    """A tokenizer with a pad token (hub causal LMs often lack one: reuse EOS then)."""
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def base_model(params: Params, tokenizer: PreTrainedTokenizerBase, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """The model phase 0 starts from: a seeded random ladder model, or a pretrained checkpoint.

    Pretrained weights load in `dtype` (fp32 by default: the master weights that training
    updates), whatever dtype the checkpoint was stored in (Pythia's are fp16).
    """
    if params.uses_ladder:
        torch.manual_seed(params.seed)
        config = ladder_config(params.model, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
        return AutoModelForCausalLM.from_config(config, dtype=dtype)
    return AutoModelForCausalLM.from_pretrained(params.model, dtype=dtype)


def load_model(
    iteration: int, task: str, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> PreTrainedModel:
    """The checkpoint trained at `iteration` for `task` (safetensors, via from_pretrained), in `dtype` on `device`."""
    path = paths.model(iteration, task)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no checkpoint: run the train stage of iteration {iteration} first")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    return model.to(device) if device is not None else model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
