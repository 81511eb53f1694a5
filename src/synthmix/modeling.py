"""The model ladder (Pythia's GPT-NeoX architecture at laptop sizes) and checkpoint loading.

`model` in params.yaml is either a ladder size (tiny, small, medium: ~1M, ~4M, ~12M parameters
with the default 2k-token vocabulary) or anything `AutoModelForCausalLM.from_pretrained` accepts
(a hub id such as EleutherAI/pythia-410m, or a local directory).
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, GPTNeoXConfig, PreTrainedModel, PreTrainedTokenizerBase

from synthmix import paths
from synthmix.params import Params
from synthmix.tokenizer import load_tokenizer  # noqa: F401 - re-exported: the stages load tokenizers from here

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


def attention_implementation() -> str:
    """"eager" on CPU, transformers' default (SDPA) elsewhere.

    Measured here (2-core AVX512-BF16 CPU, torch 2.13, the ladder's sequences of 30-250 tokens):
    SDPA's CPU kernel spends 20 ms a call in its bf16 backward pass, half of a tiny model's training
    step, where eager attention's matmuls take under 1 ms; in fp32 eager is as fast or faster
    (one epoch of math, tiny, batch 8: 7.8 s vs 8.2 s).
    """
    return "sdpa" if torch.cuda.is_available() else "eager"


def ladder_model(size: str, tokenizer: PreTrainedTokenizerBase, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """A seeded, randomly initialised ladder model of `size` for `tokenizer` (what pretraining starts from)."""
    torch.manual_seed(seed)
    config = ladder_config(size, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    return AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attention_implementation())


def base_model(params: Params, tokenizer: PreTrainedTokenizerBase, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """The model phase 0 starts from: a pretrained checkpoint, the ladder size's own base
    (models/base/<size>, stage `pretrain`) or a hub model.

    Weights load in `dtype` (fp32 by default: the master weights that training updates), whatever
    dtype the checkpoint was stored in (Pythia's are fp16).
    """
    source = paths.base(params.model) if params.uses_ladder else params.model
    if params.uses_ladder and not (paths.base(params.model) / "config.json").exists():
        raise FileNotFoundError(f"{source} has no pretrained base: run the pretrain stage first (dvc repro pretrain)")
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=attention_implementation())
    # a hub model may pad its embedding table past its tokenizer (Pythia: 50304 rows, 50277 tokens)
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise ValueError(f"{source}'s vocabulary ({model.get_input_embeddings().num_embeddings}) is smaller than "
                         f"models/tokenizer's ({len(tokenizer)} tokens): rerun the tokenizer stage")
    return model


def load_model(
    iteration: int, task: str, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> PreTrainedModel:
    """The checkpoint trained at `iteration` for `task` (safetensors, via from_pretrained), in `dtype` on `device`."""
    path = paths.model(iteration, task)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no checkpoint: run the train stage of iteration {iteration} first")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attention_implementation())
    return model.to(device) if device is not None else model


#: model families whose logits are exactly output_layer(base_model(...).last_hidden_state): no
#: logit scaling or soft-capping after the last hidden state (true of GPT-NeoX, i.e. the ladder
#: and Pythia); others go through the model's own forward
PLAIN_HEAD_FAMILIES = frozenset({"gpt_neox"})


def _language_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under a peft wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def has_plain_head(model: torch.nn.Module) -> bool:
    """Whether `logits_at` can run the output layer at chosen positions only."""
    lm = _language_model(model)
    return getattr(getattr(lm, "config", None), "model_type", None) in PLAIN_HEAD_FAMILIES


def logits_at(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Logits at positions (rows[i], cols[i]) only, shape (len(rows), vocab).

    The output layer (hidden x vocabulary) and its softmax dominate a small model's per-position
    cost, and scoring needs them at a fraction of the positions (the answer tokens). For the
    PLAIN_HEAD_FAMILIES the last hidden states are gathered first and projected after; for any
    other model the full logits are computed and indexed (same result, more work).
    """
    if not has_plain_head(model):
        return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[rows, cols]
    lm = _language_model(model)
    # use_cache=False: transformers' default (config.use_cache) builds a KV cache on every forward,
    # training's included (~10% of a tiny model's training step here); nothing reads it
    hidden = lm.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    return lm.get_output_embeddings()(hidden[rows, cols])


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
