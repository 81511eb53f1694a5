"""Text helpers shared by task families: a short answer's first line (commonsense, factual,
reading), SQuAD-style answer normalisation and scoring (the official SQuAD 2.0 script's rules;
factual and reading), made-up names (factual and reading), and the stable hash that splits a
generated item space into train and test (math, reading, code)."""

from __future__ import annotations

import collections
import hashlib
import random
import re
import string
from collections.abc import Callable
from typing import Any

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def first_line(text: str) -> str:
    """A completion's first line, stripped: a short answer ends where the model starts a new line."""
    return text.strip().split("\n", 1)[0].strip()


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the and collapse whitespace (SQuAD)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when both normalise to the same string, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 of the normalised strings; two empty strings agree (F1 1), one does not."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(prediction: str, golds: list[str]) -> tuple[float, float]:
    """(EM, F1), each the max over `golds`; golds that normalise to nothing count as "no answer"
    and an empty gold list means the question has no answer (official SQuAD 2.0 rule)."""
    golds = [g for g in golds if normalize_answer(g)] or [""]
    return max(exact_match(prediction, g) for g in golds), max(token_f1(prediction, g) for g in golds)


_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "", "n", "r", "s", "l")


def made_up_word(rng: random.Random, syllables: int = 2) -> str:
    """A pronounceable, capitalised nonsense word ("Velin", "Dorasko"); the small syllable
    inventory keeps the BPE vocabulary the names need small."""
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


def unique_words(rng: random.Random, n: int, taken: set[str], syllables: int = 2) -> list[str]:
    """`n` made-up words, distinct from each other and from `taken` (which is updated)."""
    words = []
    while len(words) < n:
        word = made_up_word(rng, syllables)
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def partition(key: str, shares: int = 5) -> str:
    """Which side of a fixed three-way partition of an item space an item is on: "test", "corpus"
    (the pretraining corpus's: synthmix.pretrain) or "train", one in `shares` on each of the first
    two.

    A stable hash (not `hash()`, which is salted per process) of the item's prompt: no two sides
    ever share an item whatever their seeds and sizes, and a side needs no knowledge of the others,
    so the pretraining corpus is disjoint from every fine-tuning and test item, as the Pile is from
    the benchmarks."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % shares
    return "test" if bucket == 0 else "corpus" if bucket == 1 else "train"


def in_test_partition(key: str, test_share: int = 5) -> bool:
    """Whether an item is on the test side of `partition` (one item in `test_share`)."""
    return partition(key, test_share) == "test"


def build_partitioned(
    name: str, split: str, n: int, draw: Callable[[], tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """`n` examples with distinct prompts from `split`'s side of the partition ("train", "test" or
    "corpus").

    `draw()` returns one candidate's prompt and its other fields; candidates on another side or
    already drawn are skipped. Ids are "<name>-<split>-<index>". Raises ValueError when the space
    runs out first (no new candidate in many draws), naming the split and the count reached."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    misses = 0
    while len(rows) < n:
        prompt, fields = draw()
        if prompt in seen or partition(prompt) != split:
            misses += 1
            if misses > 200 * (len(seen) + 100):
                raise ValueError(f"{name}: only {len(rows)} distinct {split} items exist, {n} were asked for "
                                 f"(prepare.sizes.{name}.{split}_size)")
            continue
        misses = 0
        seen.add(prompt)
        rows.append({"id": f"{name}-{split}-{len(rows):06d}", "prompt": prompt, **fields})
    return rows
