"""Batched inference: results match unbatched, independent computations."""

import math

import pytest
import torch

from synthmix import inference, modeling
from synthmix.params import parse_params
from synthmix.tokenizer import train_tokenizer

TEXTS = [f"Question: what is {a} plus {b}?\nAnswer: {a + b}" for a in range(12) for b in range(12)]


@pytest.fixture(scope="module")
def model_and_tokenizer():
    tok = train_tokenizer(iter(TEXTS), vocab_size=300)
    model = modeling.ladder_model("tiny", tok)
    return model, tok


def test_choice_logprobs_equal_a_direct_computation(model_and_tokenizer):
    model, tok = model_and_tokenizer
    prompts = ["Question: what is 1 plus 2?\nAnswer:", "Q"]
    choices = [[" 3", " 12 and more"], [" what"]]
    got = inference.choice_logprobs(model, tok, prompts, choices, batch_size=2)
    for prompt, options, scores in zip(prompts, choices, got):
        for option, score in zip(options, scores):
            p = tok(prompt, add_special_tokens=False)["input_ids"]
            ids = p + tok(option, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], -1)
            expected = sum(logp[i - 1, ids[i]].item() for i in range(len(p), len(ids))) / (len(ids) - len(p))
            assert score == pytest.approx(expected, abs=1e-4)


def test_greedy_generation_is_batch_independent_and_confidence_is_its_probability(model_and_tokenizer):
    model, tok = model_and_tokenizer
    prompts = ["Question: what is 3 plus 4?\nAnswer:", "Question:", "Question: what is 11 plus 11?\nAnswer:"]
    batched = inference.generate(model, tok, prompts, max_new_tokens=6, batch_size=3)
    single = [inference.generate(model, tok, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    for prompt, gen in zip(prompts, single):
        # recompute the generated tokens' probabilities with one plain forward pass
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        out = list(gen.token_ids)
        assert tok.decode(out, skip_special_tokens=True) == gen.text
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([p + out])).logits[0], -1)
        lps = [logp[len(p) + i - 1, t].item() for i, t in enumerate(out)]
        assert gen.confidence == pytest.approx(math.exp(sum(lps) / len(lps)), rel=1e-3)
        assert 0.0 < gen.confidence <= 1.0


def test_sampling_is_seeded(model_and_tokenizer):
    model, tok = model_and_tokenizer
    kwargs = dict(max_new_tokens=8, sample=True, temperature=0.8, top_p=0.9, batch_size=4)
    a = inference.generate(model, tok, ["Question:"] * 4, seed=1, **kwargs)
    b = inference.generate(model, tok, ["Question:"] * 4, seed=1, **kwargs)
    c = inference.generate(model, tok, ["Question:"] * 4, seed=2, **kwargs)
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.text for g in a] != [g.text for g in c]
