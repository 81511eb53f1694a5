"""Stage `tokenizer`: a byte-level BPE trained on the external training data (ladder models), or
the pretrained model's own tokenizer (any other `model`).

Byte-level BPE round-trips any text exactly (code keeps its indentation) and, trained on the task
data, gives the small numbers and words of the built-in tasks a token each, which is what lets a
1M-parameter model learn them in seconds. Saved as a transformers tokenizer, so it loads with
`AutoTokenizer.from_pretrained(models/tokenizer)` like any hub tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from synthmix import paths
from synthmix.params import Params
from synthmix.records import read_jsonl

EOS = "<|endoftext|>"
PAD = "<|padding|>"


def _texts(params: Params) -> Iterator[str]:
    for task in params.tasks:
        for row in read_jsonl(paths.external(task, "train")):
            yield row["prompt"] + row["completion"]


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


def run(params: Params) -> None:
    """Save the tokenizer every later stage loads from models/tokenizer.

    A ladder model gets a byte-level BPE trained on every task's external train split. Any other
    `model` (a hub id or a local checkpoint directory) brings its own tokenizer, which is saved
    as it is (with pad = EOS when it has no pad token), so later stages never need to know which.
    """
    out = paths.tokenizer()
    if params.uses_ladder:
        tok = train_tokenizer(_texts(params), params.tokenizer.vocab_size)
        source = f"byte-level BPE trained on {', '.join(params.tasks)}"
    else:
        from synthmix.modeling import load_tokenizer

        tok = load_tokenizer(params.model)
        source = f"{params.model}'s own tokenizer"
    tok.save_pretrained(out)
    print(f"tokenizer: {len(tok)} tokens ({source}) -> {out}")
