"""Self-BLEU equals the NLTK sentence_bleu loop, handles duplicates, short and empty samples."""

from __future__ import annotations

import random

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from synthmix.metrics import load, self_bleu


def nltk_self_bleu(samples: list[str]) -> float:
    """The reference: each non-empty sample against all the other non-empty ones."""
    toks = [s.split() for s in samples if s.split()]
    smooth = SmoothingFunction().method1
    scores = [
        sentence_bleu(toks[:i] + toks[i + 1 :], hyp, smoothing_function=smooth) for i, hyp in enumerate(toks)
    ]
    return sum(scores) / len(scores)


def random_samples(seed: int, n: int, vocab: int, lengths: tuple[int, int]) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(*lengths))) for _ in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_matches_nltk_on_random_word_sequences(seed: int) -> None:
    samples = random_samples(seed, n=40, vocab=[8, 30, 300][seed % 3], lengths=(1, 25))
    out = self_bleu(samples)
    assert out["n_samples"] == 40
    assert out["self_bleu"] == pytest.approx(nltk_self_bleu(samples), abs=1e-9)


def test_duplicates() -> None:
    samples = ["the cat sat on the mat"] * 3 + ["a dog sat on a log", "the cat ran", "the the the the"]
    assert self_bleu(samples)["self_bleu"] == pytest.approx(nltk_self_bleu(samples), abs=1e-9)
    assert self_bleu(["x y z w v"] * 4)["self_bleu"] == pytest.approx(1.0)


def test_short_samples_below_four_tokens() -> None:
    samples = ["a", "a b", "b a c", "a", "c c", "d", "a b c d"]
    assert self_bleu(samples)["self_bleu"] == pytest.approx(nltk_self_bleu(samples), abs=1e-9)
    assert self_bleu(["a", "b"])["self_bleu"] == 0.0  # no unigram match: BLEU 0, as NLTK


def test_empty_samples_are_excluded() -> None:
    samples = ["", "one two three", "   ", "one two four five", "six one"]
    out = self_bleu(samples)
    assert out["n_samples"] == 3
    assert out["self_bleu"] == pytest.approx(self_bleu([s for s in samples if s.strip()])["self_bleu"], abs=1e-15)
    assert out["self_bleu"] == pytest.approx(nltk_self_bleu(samples), abs=1e-9)
    with pytest.raises(ValueError, match="at least 2 non-empty"):
        self_bleu(["only one", "", " "])


def test_max_samples_takes_a_seeded_subset() -> None:
    samples = random_samples(11, n=60, vocab=40, lengths=(5, 15))
    a, b = self_bleu(samples, max_samples=20, seed=3), self_bleu(samples, max_samples=20, seed=3)
    assert a == b and a["n_samples"] == 20
    assert self_bleu(samples, max_samples=20, seed=4)["self_bleu"] != a["self_bleu"]
    assert self_bleu(samples, max_samples=60)["self_bleu"] == pytest.approx(nltk_self_bleu(samples), abs=1e-9)


def test_evaluate_module_is_the_same_computation() -> None:
    samples = random_samples(5, n=50, vocab=50, lengths=(0, 12))
    module = load("self_bleu")
    assert module.compute(predictions=samples) == self_bleu(samples)
    assert module.compute(predictions=samples, max_samples=10, seed=1) == self_bleu(samples, max_samples=10, seed=1)
