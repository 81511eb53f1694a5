"""Nucleus sampling: the same distribution as transformers' temperature + top-p warpers, and draws from it."""

import math

import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from synthmix import sampling


def hf_distribution(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """What `generate(do_sample=True, temperature=, top_p=, top_k=None)` samples from."""
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    scores = TopPLogitsWarper(top_p)(None, scores)
    return torch.softmax(scores, dim=-1)


def logits_of_every_shape(vocab: int = 2048) -> torch.Tensor:
    """Rows from peaked (the nucleus within the top candidates) to flat (a full sort needed)."""
    gen = torch.Generator().manual_seed(0)
    rows = [torch.randn(vocab, generator=gen) * scale for scale in (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)]
    # no exact ties: which of several equal logits a nucleus keeps depends on the sort's tie order
    peaked = -5.0 + 0.01 * torch.randn(vocab, generator=gen)
    peaked[[3, 17, 99]] = torch.tensor([4.0, 3.5, 1.0])
    return torch.stack([*rows, peaked])


@pytest.mark.parametrize("temperature,top_p", [(0.8, 0.9), (1.0, 0.5), (0.5, 0.99), (1.3, 0.95)])
def test_distribution_equals_transformers_warpers(temperature, top_p):
    logits = logits_of_every_shape()
    ours = sampling.distribution(logits, temperature, top_p)
    theirs = hf_distribution(logits, temperature, top_p)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-4)
    # both paths were taken: some rows' nuclei fit the candidates, the flattest rows' do not
    sizes = (theirs > 0).sum(-1)
    assert sizes.min() <= sampling.CANDIDATES < sizes.max()


def test_draws_follow_the_distribution_chi_square():
    """50,000 draws per row against the exact nucleus probabilities (Pearson's chi-square)."""
    logits = logits_of_every_shape(vocab=256)[[2, 3, 6]]  # a full-sort row, a top-k row, a peaked row
    expected = hf_distribution(logits, 0.8, 0.9)
    n = 50_000
    gen = torch.Generator().manual_seed(1)
    counts = torch.zeros_like(expected)
    for _ in range(n // 1000):
        draws = sampling.sample(logits.repeat_interleave(1000, 0), 0.8, 0.9, gen).view(len(logits), 1000)
        counts.scatter_add_(1, draws, torch.ones_like(draws, dtype=counts.dtype))
    for row in range(len(logits)):
        support = expected[row] > 0
        assert counts[row][~support].sum() == 0  # nothing outside the nucleus, ever
        e = expected[row][support] * n
        stat = float(((counts[row][support] - e) ** 2 / e).sum())
        dof = int(support.sum()) - 1
        # Wilson-Hilferty approximation of the chi-square 0.999 quantile
        z = 3.09
        critical = dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3 if dof > 1 else 10.8
        assert stat < critical, f"row {row}: chi-square {stat:.1f} over {dof} dof (0.999 quantile {critical:.1f})"


def test_a_biased_sampler_fails_the_same_check():
    """The check above can fail: dropping the least probable kept token is caught."""
    logits = logits_of_every_shape(vocab=256)[[3]]
    expected = hf_distribution(logits, 0.8, 0.9)[0]
    biased = expected.clone()
    biased[expected.argmax()] += biased[(expected > 0) & (expected < expected.max())].min()
    biased[torch.where(expected > 0, expected, 2.0).argmin()] = 0
    draws = torch.multinomial(biased, 50_000, replacement=True, generator=torch.Generator().manual_seed(2))
    counts = torch.bincount(draws, minlength=len(expected)).float()
    support = expected > 0
    e = expected[support] * 50_000
    stat = float(((counts[support] - e) ** 2 / e).sum())
    dof = int(support.sum()) - 1
    critical = dof * (1 - 2 / (9 * dof) + 3.09 * math.sqrt(2 / (9 * dof))) ** 3
    assert stat > critical


def test_sampling_is_seeded_and_top_p_one_is_plain_softmax():
    logits = logits_of_every_shape()
    a = sampling.sample(logits, 0.8, 0.9, torch.Generator().manual_seed(5))
    b = sampling.sample(logits, 0.8, 0.9, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    full = sampling.distribution(logits, 0.7, 1.0)
    torch.testing.assert_close(full, torch.softmax(logits / 0.7, -1), atol=1e-6, rtol=1e-4)
