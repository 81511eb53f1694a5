"""Self-BLEU (diversity of a set of generations; lower = more diverse) as an `evaluate` metric."""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence

import datasets
import evaluate

_DESCRIPTION = """\
Self-BLEU (Zhu et al. 2018, Texygen): every generated sample in turn is the hypothesis and
ALL OTHER samples are its references; the score is sentence-level BLEU-4 (uniform weights
0.25) with NLTK's SmoothingFunction().method1 (epsilon 0.1 added to zero-count precisions),
averaged over hypotheses - numerically what nltk.translate.bleu_score.sentence_bleu gives.
Tokenisation is whitespace splitting (str.split(), case kept). Empty samples (no tokens) are
excluded before scoring, both as hypotheses and as references; at least 2 non-empty samples
are required. With more than `max_samples` (default 500) non-empty samples, a random subset
of that size is scored (random.Random(seed), `seed` default 0). Returns {"self_bleu": float,
"n_samples": number of samples actually scored}.
Cost: n-gram counts are computed once per sample and, for every n-gram, the two largest
counts over samples are kept, so each hypothesis' "max count among the others" is O(1);
overall linear in the total number of tokens instead of NLTK's quadratic loop.
"""

_CITATION = """\
@inproceedings{zhu2018texygen,
  title={Texygen: A Benchmarking Platform for Text Generation Models},
  author={Zhu, Yaoming and Lu, Sidi and Zheng, Lei and Guo, Jiaxian and Zhang, Weinan and Wang, Jun and Yu, Yong},
  booktitle={SIGIR}, year={2018}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list of str, the generated samples.
    max_samples: score at most this many samples (seeded random subset; default 500).
    seed: seed of that subset (default 0).
Returns:
    self_bleu: float in [0, 1]; n_samples: int.
Examples:
    >>> m = synthmix.metrics.load("self_bleu")
    >>> m.compute(predictions=["a b c d", "a b c d"])
    {'self_bleu': 1.0, 'n_samples': 2}
"""

MAX_ORDER = 4
EPSILON = 0.1  # NLTK SmoothingFunction().method1


def self_bleu(samples: Sequence[str], max_samples: int = 500, seed: int = 0) -> dict:
    """Self-BLEU-4 of `samples` (see module description for the exact definition)."""
    if max_samples < 2:
        raise ValueError(f"max_samples must be at least 2; got {max_samples}.")
    tokens = [toks for toks in (s.split() for s in samples) if toks]
    if len(tokens) < 2:
        raise ValueError(f"self-BLEU needs at least 2 non-empty samples; got {len(tokens)}.")
    if len(tokens) > max_samples:
        keep = sorted(random.Random(seed).sample(range(len(tokens)), max_samples))
        tokens = [tokens[i] for i in keep]

    counts = [_ngram_counts(toks) for toks in tokens]
    best = _top_two(counts)
    lengths = Counter(len(t) for t in tokens)
    distinct_lengths = sorted(lengths)
    scores = []
    for i, (toks, own) in enumerate(zip(tokens, counts)):
        clipped = [0] * (MAX_ORDER + 1)
        for gram, c in own.items():
            first, owner, second = best[gram]
            clipped[len(gram)] += min(c, second if owner == i else first)
        scores.append(_bleu(clipped, len(toks), _closest_other_length(len(toks), lengths, distinct_lengths)))
    return {"self_bleu": math.fsum(scores) / len(scores), "n_samples": len(tokens)}


def _ngram_counts(toks: list[str]) -> Counter:
    return Counter(tuple(toks[j : j + n]) for n in range(1, MAX_ORDER + 1) for j in range(len(toks) - n + 1))


def _top_two(counts: list[Counter]) -> dict[tuple[str, ...], list[int]]:
    """n-gram -> [largest count, sample holding it, second largest count] over all samples."""
    best: dict[tuple[str, ...], list[int]] = {}
    for i, sample_counts in enumerate(counts):
        for gram, c in sample_counts.items():
            entry = best.get(gram)
            if entry is None:
                best[gram] = [c, i, 0]
            elif c > entry[0]:
                entry[0], entry[1], entry[2] = c, i, entry[0]
            elif c > entry[2]:  # ties with the max land here too: max over others stays c
                entry[2] = c
    return best


def _closest_other_length(h: int, lengths: Counter, distinct: list[int]) -> int:
    """NLTK's closest_ref_length over all samples but one of length h: nearest, ties -> shorter."""
    if lengths[h] >= 2:
        return h
    k = bisect_left(distinct, h)  # distinct[k] == h is the hypothesis itself
    below = distinct[k - 1] if k > 0 else None
    above = distinct[k + 1] if k + 1 < len(distinct) else None
    if below is None or (above is not None and above - h < h - below):
        return above  # type: ignore[return-value]
    return below


def _bleu(clipped: list[int], hyp_len: int, ref_len: int) -> float:
    """Sentence BLEU-4 from clipped n-gram matches, as nltk's corpus_bleu with method1."""
    if clipped[1] == 0:  # NLTK returns 0 outright when no unigram matches
        return 0.0
    log_p = []
    for n in range(1, MAX_ORDER + 1):
        denominator = max(1, hyp_len - n + 1)
        p = clipped[n] / denominator if clipped[n] else EPSILON / denominator
        log_p.append(0.25 * math.log(p))
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(math.fsum(log_p))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SelfBleu(evaluate.Metric):
    """`evaluate` wrapper around `self_bleu`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str], max_samples: int = 500, seed: int = 0) -> dict:
        return self_bleu(predictions, max_samples=max_samples, seed=seed)
