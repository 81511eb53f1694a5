"""Any Hugging Face causal LM: a scaled-down Pythia directory through every model stage, and LoRA.

The model is a randomly initialised GPT-NeoX with Pythia-410m's config.json (tests/hf_pythia.py),
saved like a hub checkpoint; `model: <that dir>` takes the same from_pretrained path a hub id
(EleutherAI/pythia-410m) takes, offline.
"""

import json
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from dvc_repo import TINY
from hf_pythia import make_pythia_dir
from synthmix import modeling, paths
from synthmix.cli import main
from synthmix.params import parse_params
from synthmix.records import read_jsonl
from synthmix.tasks import get_task
from synthmix import train as train_module
from synthmix.train import fine_tune, merge_lora_state_dict

TASKS = ["math", "commonsense"]  # a generated answer and a multiple choice


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """accelerate keeps one process-wide state, whose mixed precision cannot change once set: a
    stage process trains with one setting, these tests with several."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()


@pytest.fixture(scope="module")
def pythia_dir(tmp_path_factory):
    texts = [e["prompt"] + e["completion"] for t in TASKS for e in get_task(t).build("train", 200, 7)]
    return make_pythia_dir(tmp_path_factory.mktemp("hub") / "pythia-mini", texts)


def write_params(path, **overrides):
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    for key, value in {**TINY, **overrides}.items():
        if isinstance(value, dict) and isinstance(params.get(key), dict) and key != "iterations":
            params[key] = {**params[key], **value}
        else:
            params[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_pythia_config_keeps_the_architecture_flags(pythia_dir):
    config = AutoConfig.from_pretrained(pythia_dir)
    assert config.model_type == "gpt_neox" and config.use_parallel_residual and not config.tie_word_embeddings
    assert config.rope_parameters["partial_rotary_factor"] == 0.25 and config.hidden_act == "gelu"
    tok = AutoTokenizer.from_pretrained(pythia_dir)
    assert tok.pad_token is None and config.vocab_size >= len(tok)  # as Pythia: no pad, padded vocabulary


def test_a_checkpoint_directory_runs_through_tokenizer_train_evaluate_generate(pythia_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", model=str(pythia_dir), tasks=TASKS, threads=1,
                 generate={"batch_size": 16}, evaluate={"batch_size": 8, "diversity_samples": 12})
    for verb in (["prepare"], ["tokenizer"], ["mix", "--iteration", "0"], ["train", "--iteration", "0"],
                 ["evaluate", "--iteration", "0"], ["gate", "--iteration", "0"], ["generate", "--iteration", "1"]):
        assert main(verb) == 0, verb

    # the tokenizer stage saved the model's own tokenizer (pad = EOS), not a BPE of the task data
    saved, original = AutoTokenizer.from_pretrained(paths.tokenizer()), AutoTokenizer.from_pretrained(pythia_dir)
    assert saved.get_vocab() == original.get_vocab() and saved.pad_token_id == saved.eos_token_id == 0
    for task in TASKS:
        ckpt = paths.model(0, task)
        trained = AutoModelForCausalLM.from_pretrained(ckpt)  # a plain from_pretrained directory
        assert trained.config.use_parallel_residual and trained.config.vocab_size == AutoConfig.from_pretrained(pythia_dir).vocab_size
        start = AutoModelForCausalLM.from_pretrained(pythia_dir)
        assert not torch.equal(trained.gpt_neox.embed_in.weight, start.gpt_neox.embed_in.weight)  # it trained
        assert len(read_jsonl(paths.predictions(0, task))) == 12
        assert len(read_jsonl(paths.synthetic_raw(1, task))) == 48
    scores = json.loads(paths.scores(0).read_text())
    assert set(scores) == set(TASKS) and all(0 <= scores[t]["ece"] <= 1 for t in TASKS)
    training = json.loads((paths.MODELS / "iter0" / "training.json").read_text())
    assert training["math"]["processes"] == 1 and training["math"]["steps"] == 3  # 48 examples / 16


def _examples():
    return [{"prompt": e["prompt"], "completion": e["completion"]} for e in get_task("math").build("train", 32, 3)]


def test_lora_trains_only_the_adapters_and_merges_into_a_plain_checkpoint(pythia_dir, tmp_path, monkeypatch):
    params = parse_params({"model": str(pythia_dir), "train": {
        "epochs": 2, "batch_size": 8, "learning_rate": 1e-2, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}})
    tokenizer = modeling.load_tokenizer(pythia_dir)
    model = modeling.base_model(params, tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    trainable: dict[str, int] = {}  # what the optimizer is given: the parameters requiring gradients
    apply_lora = train_module._apply_lora

    def apply_and_record(m, cfg):
        wrapped = apply_lora(m, cfg)
        trainable.update({n: p.numel() for n, p in wrapped.named_parameters() if p.requires_grad})
        return wrapped

    monkeypatch.setattr(train_module, "_apply_lora", apply_and_record)
    summary = fine_tune(model, tokenizer, _examples(), params.train, seed=0, log_dir=tmp_path / "live",
                        save_to=tmp_path / "ckpt")
    assert summary["steps"] == 8
    # only LoRA's A and B matrices of the targeted query_key_value layers were trainable
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert all("query_key_value" in n for n in trainable)
    assert sum(trainable.values()) < 0.05 * sum(v.numel() for v in before.values())

    # merged: the caller's model is plain again; only the targeted weights moved, by B @ A x alpha / r
    after = model.state_dict()
    assert set(after) == set(before)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"gpt_neox.layers.{i}.attention.query_key_value.weight" for i in range(2)}

    # the saved checkpoint is a plain from_pretrained directory with the merged weights
    assert not (tmp_path / "ckpt" / "adapter_config.json").exists()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    ids = torch.tensor([tokenizer("Question: 3 + 4", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model.eval()(ids).logits)
    assert AutoTokenizer.from_pretrained(tmp_path / "ckpt").pad_token_id == 0


def test_merge_from_a_gathered_state_dict_equals_merge_and_unload(pythia_dir):
    """The path FSDP / ZeRO-3 take (merge from the gathered full state dict) gives peft's own merge."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(pythia_dir),
                                LoraConfig(r=4, lora_alpha=8, target_modules=["query_key_value"], task_type="CAUSAL_LM"))
    with torch.no_grad():  # B starts at zero: give it values so that the merge matters
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    state = {k: v.clone() for k, v in peft_model.state_dict().items()}
    rebuilt = merge_lora_state_dict(peft_model, state)
    reference = peft_model.merge_and_unload()
    assert type(rebuilt) is type(reference)
    ref_state = reference.state_dict()
    assert set(rebuilt.state_dict()) == set(ref_state)
    for key, value in rebuilt.state_dict().items():
        torch.testing.assert_close(value, ref_state[key], rtol=0, atol=1e-6)


def test_gradient_checkpointing_trains_the_same(pythia_dir, tmp_path):
    tokenizer = modeling.load_tokenizer(pythia_dir)
    finals = []
    for checkpointing in (False, True):
        params = parse_params({"model": str(pythia_dir), "train": {
            "epochs": 1, "batch_size": 8, "gradient_checkpointing": checkpointing}})
        model = modeling.base_model(params, tokenizer)
        summary = fine_tune(model, tokenizer, _examples(), params.train, seed=0, log_dir=tmp_path / f"l{checkpointing}")
        finals.append(summary["final_loss"])
    assert finals[1] == pytest.approx(finals[0], rel=1e-5)


def test_lora_in_bf16_keeps_a_bf16_frozen_base_and_saves_it_merged(pythia_dir, tmp_path):
    params = parse_params({"model": str(pythia_dir), "train": {
        "epochs": 1, "batch_size": 8, "mixed_precision": "bf16", "lora": {"r": 4}}})
    tokenizer = modeling.load_tokenizer(pythia_dir)
    model = train_module.starting_point(params, 0, "math", tokenizer)
    assert model.dtype == torch.bfloat16  # frozen: no fp32 master copy needed
    summary = fine_tune(model, tokenizer, _examples(), params.train, seed=0, log_dir=tmp_path / "live",
                        save_to=tmp_path / "ckpt")
    assert summary["steps"] == 4 and summary["final_loss"] == summary["final_loss"]  # finite, not NaN
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt", dtype="auto")
    assert reloaded.dtype == torch.bfloat16 and not any("lora" in k for k in reloaded.state_dict())
