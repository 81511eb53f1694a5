"""Training: loss on the completion only, the model learns, checkpoints load with from_pretrained."""

import csv

import pytest
import torch
from transformers import AutoModelForCausalLM

from safetensors.torch import load_file

from synthmix import modeling
from synthmix.params import parse_params
from synthmix.tokenizer import train_tokenizer
from synthmix.train import encode, fine_tune

EXAMPLES = [{"prompt": f"Q: {a} plus 1?\nA:", "completion": f" {a + 1}"} for a in range(40)]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer((e["prompt"] + e["completion"] for e in EXAMPLES), vocab_size=300)


def test_encode_masks_the_prompt_and_appends_eos(tokenizer):
    enc = encode(EXAMPLES[3], tokenizer, max_length=64)
    n_prompt = len(tokenizer(EXAMPLES[3]["prompt"], add_special_tokens=False)["input_ids"])
    assert enc["labels"][:n_prompt] == [-100] * n_prompt
    assert enc["labels"][n_prompt:] == enc["input_ids"][n_prompt:]
    assert enc["input_ids"][-1] == tokenizer.eos_token_id
    full = encode(EXAMPLES[3], tokenizer, max_length=64, prompt_loss=True)
    assert full["labels"] == full["input_ids"]
    assert len(encode(EXAMPLES[3], tokenizer, max_length=4)["input_ids"]) == 4


def test_ladder_sizes_grow_and_keep_pythia_flags(tokenizer):
    sizes = [modeling.count_parameters(modeling.ladder_model(m, tokenizer))
             for m in ("tiny", "small", "medium")]
    assert sizes[0] < sizes[1] < sizes[2]
    config = modeling.ladder_config("tiny", 2048, 0, 1)
    assert config.use_parallel_residual and config.rope_parameters["partial_rotary_factor"] == 0.25 and not config.tie_word_embeddings
    # with the default 2k vocabulary: ~1M, ~4M, ~12M parameters
    counts = [modeling.count_parameters(AutoModelForCausalLM.from_config(modeling.ladder_config(m, 2048, 0, 1)))
              for m in ("tiny", "small", "medium")]
    assert 0.7e6 < counts[0] < 1.5e6 and 3e6 < counts[1] < 5e6 and 10e6 < counts[2] < 14e6


def test_fine_tune_learns_logs_and_saves_a_loadable_checkpoint(tokenizer, tmp_path):
    params = parse_params({"model": "tiny", "train": {"epochs": 8, "batch_size": 8, "learning_rate": 3e-3}})
    model = modeling.ladder_model(params.model, tokenizer)
    summary = fine_tune(model, tokenizer, EXAMPLES, params.train, seed=0, log_dir=tmp_path / "live")
    with open(tmp_path / "live/plots/metrics/loss.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    losses = [float(row["loss"]) for row in rows]
    assert len(losses) == summary["steps"] == 40
    # one row per optimizer step, numbered 0..39, in both curves, though dvclive syncs only at
    # each flush of LOG_EVERY (16) steps (train._log_steps)
    with open(tmp_path / "live/plots/metrics/learning_rate.tsv") as f:
        lr_steps = [int(row["step"]) for row in csv.DictReader(f, delimiter="\t")]
    assert [int(row["step"]) for row in rows] == lr_steps == list(range(40))
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    model.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt/model.safetensors").exists()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(reloaded(ids).logits, model.eval()(ids).logits)


def test_fine_tune_is_seeded(tokenizer, tmp_path):
    params = parse_params({"model": "tiny", "train": {"epochs": 1, "batch_size": 8}})
    finals = []
    for run in range(2):
        model = modeling.ladder_model(params.model, tokenizer)
        finals.append(fine_tune(model, tokenizer, EXAMPLES, params.train, seed=5, log_dir=tmp_path / f"l{run}")["final_loss"])
    assert finals[0] == finals[1]


def test_output_layer_at_targets_only_gives_the_full_loss_and_gradients(tokenizer):
    """summed_loss with head_on_targets (modeling.logits_at) equals the loss over full logits."""
    from synthmix.train import collate, summed_loss

    params = parse_params({"model": "tiny"})
    model = modeling.ladder_model(params.model, tokenizer)
    batch = collate([encode(ex, tokenizer, 64) for ex in EXAMPLES[:6]], tokenizer.pad_token_id)
    grads = []
    for fast in (False, True):
        model.zero_grad()
        loss = summed_loss(model, batch, head_on_targets=fast)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-5)
    for full, fast in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(full, fast, rtol=1e-4, atol=1e-6)
    assert modeling.has_plain_head(model)


def test_mixed_precision_auto_resolves_and_is_recorded(tokenizer, tmp_path):
    from synthmix.train import bf16_supported, resolved_precision

    params = parse_params({"model": "tiny", "train": {"epochs": 1, "batch_size": 8}})
    assert params.train.mixed_precision == "auto"
    assert resolved_precision(params.train) == ("bf16" if bf16_supported() else "fp32")
    assert resolved_precision(parse_params({"train": {"mixed_precision": "fp32"}}).train) == "fp32"
    summary = fine_tune(modeling.ladder_model(params.model, tokenizer), tokenizer, EXAMPLES, params.train, seed=0,
                        log_dir=tmp_path / "live")
    assert summary["mixed_precision"] == resolved_precision(params.train)


def test_a_diverged_loss_stops_naming_the_task_step_and_knobs_and_saves_nothing(tokenizer, tmp_path):
    from synthmix.train import TrainingDiverged

    params = parse_params({"model": "tiny", "train": {"epochs": 2, "batch_size": 8, "checkpoint_every": 2}})
    model = modeling.ladder_model(params.model, tokenizer)
    with torch.no_grad():
        model.get_input_embeddings().weight[5:] = float("nan")  # every step's loss is NaN
    with pytest.raises(TrainingDiverged) as err:
        fine_tune(model, tokenizer, EXAMPLES, params.train, seed=0, log_dir=tmp_path / "live", desc="iter1/math",
                  save_to=tmp_path / "ckpt", checkpoint_dir=tmp_path / "scratch")
    message = str(err.value)
    assert message.startswith("iter1/math: the training loss became nan at step 1 of 10")
    assert "train.learning_rate" in message and "train.mixed_precision: fp32" in message
    assert not (tmp_path / "ckpt").exists()  # no checkpoint of the diverged model
    assert not list((tmp_path / "scratch").glob("step-*"))  # not even a scratch one


def test_a_loss_that_diverges_later_keeps_the_last_good_checkpoint(tokenizer, tmp_path):
    """The loss turns NaN at step 6 (a forward hook poisons the activations from its 6th call on):
    the stage stops there, and the checkpoints written before it stay whole and resumable."""
    from synthmix import checkpoints
    from synthmix.train import TrainingDiverged

    params = parse_params({"model": "tiny", "train": {"epochs": 2, "batch_size": 8, "checkpoint_every": 4}})
    model = modeling.ladder_model(params.model, tokenizer)
    calls = []

    def poison(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) >= 6 else output

    model.gpt_neox.final_layer_norm.register_forward_hook(poison)
    with pytest.raises(TrainingDiverged, match="at step 6 of 10"):
        fine_tune(model, tokenizer, EXAMPLES, params.train, seed=0, log_dir=tmp_path / "live", desc="t",
                  save_to=tmp_path / "ckpt", checkpoint_dir=tmp_path / "scratch")
    kept = checkpoints.latest(tmp_path / "scratch")
    assert kept is not None and kept.name == "step-4" and not (tmp_path / "ckpt").exists()
    state = load_file(kept / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in state.values())
