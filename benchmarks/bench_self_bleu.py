"""Time synthmix's self-BLEU against the plain NLTK sentence_bleu loop (not a test).

Usage: python benchmarks/bench_self_bleu.py        (about 15 s on one core)
Samples: seeded, 15-30 words each from a 300-word vocabulary; both implementations see the
same samples and must agree to 1e-9. The NLTK loop is quadratic in the number of samples,
so its 500-sample time is also compared with an N^2 extrapolation from 200.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from synthmix.metrics import self_bleu


def make_samples(n: int, seed: int = 0) -> list[str]:
    """`n` random sentences of 15-30 words from a 300-word vocabulary."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)]
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(15, 30))) for _ in range(n)]


def nltk_self_bleu(samples: list[str]) -> float:
    """Reference: each sample against all the others with NLTK's sentence_bleu, method1."""
    toks = [s.split() for s in samples]
    smooth = SmoothingFunction().method1
    return sum(
        sentence_bleu(toks[:i] + toks[i + 1 :], h, smoothing_function=smooth) for i, h in enumerate(toks)
    ) / len(toks)


def timed(fn: Callable[[list[str]], float], samples: list[str], repeat: int = 1) -> tuple[float, float]:
    """(fn(samples), best wall time in seconds over `repeat` runs)."""
    best, out = float("inf"), 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(samples)
        best = min(best, time.perf_counter() - start)
    return out, best


def main() -> None:
    nltk_times: dict[int, float] = {}
    for n in (200, 500):
        samples = make_samples(n)
        ours, t_ours = timed(lambda s: self_bleu(s, max_samples=len(s))["self_bleu"], samples, repeat=3)
        ref, t_ref = timed(nltk_self_bleu, samples)
        assert abs(ours - ref) < 1e-9, (ours, ref)
        nltk_times[n] = t_ref
        print(f"n={n}: synthmix {t_ours * 1e3:7.1f} ms | NLTK loop {t_ref:6.2f} s | speed-up {t_ref / t_ours:5.0f}x"
              f" | self-BLEU {ours:.6f} (|diff| {abs(ours - ref):.1e})")
    est = nltk_times[200] * (500 / 200) ** 2
    print(f"NLTK at 500 extrapolated as N^2 from 200: {est:.2f} s (measured {nltk_times[500]:.2f} s)")


if __name__ == "__main__":
    main()
