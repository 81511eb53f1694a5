"""Stage `tokenizer`: the base model's tokenizer, saved where every later stage loads it.

A ladder model's base (stage `pretrain`) brings a byte-level BPE trained on its pretraining corpus
(`train_tokenizer`); a hub model brings its own. Byte-level BPE round-trips any text exactly (code
keeps its indentation) and, trained on the task worlds, gives their small numbers and words a token
each. Saved as a transformers tokenizer, so it loads with
`AutoTokenizer.from_pretrained(models/tokenizer)` like any hub tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from synthmix import paths
from synthmix.params import Params

EOS = "<|endoftext|>"
PAD = "<|padding|>"


def train_tokenizer(texts: Iterator[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` and wrap it as a transformers fast tokenizer."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, pad_token=PAD, padding_side="right"
    )


def load_tokenizer(path: Path | str) -> PreTrainedTokenizerBase:
    """A tokenizer with a pad token (hub causal LMs often lack one: reuse EOS then).

    Here, not in synthmix.modeling: loading a tokenizer needs none of transformers' model code,
    whose import (~4 s on a 2-core CPU) was most of the tokenizer stage's time."""
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def run(params: Params) -> None:
    """Save the tokenizer every later stage loads from models/tokenizer: the pretrained base's
    (models/base/<size>) for a ladder model, the model's own for a hub id or a local checkpoint
    (with pad = EOS when it has no pad token), so later stages never need to know which."""
    out = paths.tokenizer()
    source = paths.base(params.model) if params.uses_ladder else params.model
    if params.uses_ladder and not (paths.base(params.model) / "tokenizer.json").exists():
        raise FileNotFoundError(f"{paths.base(params.model)} has no tokenizer: run the pretrain stage first "
                                "(dvc repro pretrain, or synthmix pretrain)")
    tok = load_tokenizer(source)
    tok.save_pretrained(out)
    print(f"tokenizer: {len(tok)} tokens ({source}'s) -> {out}")
