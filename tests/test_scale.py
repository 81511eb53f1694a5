"""Many processes through `accelerate launch`: the relaunch, the config files, and 1 vs 2 processes.

The 2-process runs are real: `synthmix train|evaluate|generate` with accelerate.num_processes: 2
relaunch themselves under `accelerate launch`, which starts 2 CPU processes (torchrun, gloo, one
thread each) on this machine.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from safetensors.torch import load_file

from dvc_repo import TINY
from hf_pythia import make_pythia_dir
from synthmix import distributed
from synthmix.params import ParamsError, load_params, parse_params
from synthmix.tasks import get_task
from synthmix.train import _shard

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "accelerate"
TASKS = ["math", "commonsense"]


def test_launch_command_relaunches_train_generate_evaluate_only_when_asked(monkeypatch):
    for var in ("LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    one = parse_params({})
    assert not distributed.wants_launch(one)
    two = parse_params({"accelerate": {"num_processes": 2, "main_process_port": 29999}})
    assert distributed.wants_launch(two)
    cmd = distributed.launch_command(two, ["train", "--params", "params.yaml", "--iteration", "0"])
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2" and "--multi_gpu" in cmd
    assert cmd[cmd.index("--main_process_port") + 1] == "29999"
    assert cmd[-7:] == ["-m", "synthmix.cli", "train", "--params", "params.yaml", "--iteration", "0"]
    # an accelerate config file alone (FSDP on one GPU, say) also goes through the launcher
    fsdp = parse_params({"accelerate": {"config_file": str(CONFIGS / "fsdp.yaml")}})
    assert distributed.wants_launch(fsdp)
    cmd = distributed.launch_command(fsdp, ["evaluate", "--iteration", "1"])
    assert cmd[cmd.index("--config_file") + 1] == str(CONFIGS / "fsdp.yaml") and "--multi_gpu" not in cmd
    missing = parse_params({"accelerate": {"config_file": "nope.yaml"}})
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        distributed.launch_command(missing, ["train", "--iteration", "0"])
    # inside the launched processes: no second launch
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert not distributed.wants_launch(two)


def test_a_missing_config_file_stops_the_verb_with_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("tasks: [math]\naccelerate: {config_file: configs/none.yaml}\n")
    proc = subprocess.run([sys.executable, "-m", "synthmix.cli", "train", "--iteration", "0"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and "configs/none.yaml does not exist" in proc.stderr


def test_accelerate_params_are_validated():
    with pytest.raises(ParamsError, match="accelerate.num_processes"):
        parse_params({"accelerate": {"num_processes": 0}})
    with pytest.raises(ParamsError, match="accelerate.nodes"):
        parse_params({"accelerate": {"nodes": 2}})
    with pytest.raises(ParamsError, match="train.lora.r"):
        parse_params({"train": {"lora": {"r": -1}}})


def test_shipped_params_and_the_paper_profile_are_valid():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    builtin = load_params(ROOT / "params.yaml")
    assert builtin.accelerate.num_processes == 1 and builtin.train.lora.r == 0
    paper = parse_params({**raw, "profile": "paper"})
    assert paper.model.startswith("EleutherAI/pythia-") and not paper.uses_ladder
    assert paper.train.mixed_precision == "bf16" and paper.generate.dtype == "bf16"
    for name in ("ddp", "fsdp", "deepspeed"):  # every shipped config can be named
        assert parse_params({**raw, "accelerate": {"config_file": f"configs/accelerate/{name}.yaml"}})


def _launch_env(config_file: Path, num_processes: int) -> tuple:
    """(launch args, environment) that `accelerate launch --config_file F` gives its processes, parsed by accelerate itself."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(
        ["--config_file", str(config_file), "--num_processes", str(num_processes), "-m", "synthmix.cli", "train"])
    args, _, _ = _validate_launch_command(args)
    return args, prepare_multi_gpu_env(args)


def test_fsdp_config_parses_to_full_shard_with_gptneox_layers_wrapped():
    from accelerate import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import StateDictType
    from transformers import AutoModelForCausalLM, GPTNeoXConfig
    from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXLayer

    args, env = _launch_env(CONFIGS / "fsdp.yaml", 8)
    assert args.use_fsdp and args.num_processes == 8 and env["ACCELERATE_USE_FSDP"] == "true"
    with mock.patch.dict(os.environ, env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True  # full shard
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT
    model = AutoModelForCausalLM.from_config(GPTNeoXConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=64))
    plugin.set_auto_wrap_policy(model)
    assert plugin.auto_wrap_policy.keywords["transformer_layer_cls"] == {GPTNeoXLayer}


def test_ddp_and_deepspeed_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    args, env = _launch_env(CONFIGS / "ddp.yaml", 4)
    assert args.multi_gpu and args.num_processes == 4 and "ACCELERATE_USE_FSDP" not in env
    # deepspeed itself is not installed here (it builds CUDA ops): check the file accelerate reads
    ds = load_config_from_file(str(CONFIGS / "deepspeed.yaml"))
    assert ds.distributed_type == DistributedType.DEEPSPEED
    assert ds.deepspeed_config["zero_stage"] == 3 and ds.deepspeed_config["zero3_save_16bit_model"]


def test_batches_shard_without_loss_or_overlap():
    for n in range(0, 11):
        batch = list(range(100, 100 + n))
        for world in (1, 2, 3, 8):
            parts = [_shard(batch, r, world) for r in range(world)]
            assert sum(parts, []) == batch and max(map(len, parts)) - min(map(len, parts)) <= 1
    assert distributed.my_share(5) == [0, 1, 2, 3, 4]  # one process runs every batch
    assert distributed.gather_in_order([(1, "b"), (0, "a")], 2) == ["a", "b"]
    assert distributed.batch_seed(0, 1) != distributed.batch_seed(0, 2) != distributed.batch_seed(1, 1)


# ---------------------------------------------------------------- 1 process vs 2 processes, for real


def _run(project: Path, *verb: str) -> float:
    import time

    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "synthmix.cli", *verb], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, f"{verb} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return time.perf_counter() - started


def _set_processes(project: Path, n: int) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["accelerate"] = {"num_processes": n, "config_file": None, "main_process_port": None}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _losses(project: Path, task: str) -> list[float]:
    with open(project / f"metrics/train/iter0/{task}/plots/metrics/loss.tsv") as f:
        return [float(row["loss"]) for row in csv.DictReader(f, delimiter="\t")]


def _numbers(obj, prefix=""):
    """Flatten a metrics JSON to {dotted key: number}."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_numbers(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


@pytest.mark.slow
def test_two_processes_train_evaluate_and_generate_like_one(tmp_path):
    """2 CPU processes (gloo, 1 thread each) against 1.

    - evaluate and generate of a fixed checkpoint: identical files, byte for byte (each batch is
      the one a single process forms, and a sampled batch is seeded by its number);
    - train: the same batches and the same token-mean loss, but the gradient of a batch is the sum
      of two half-batch gradients (an all-reduce) instead of one sum: float32 rounding differs at
      ~1e-7 relative per step, which Adam carries into the weights. Tolerance: losses within
      1e-5 relative (measured: <= 1.5e-7), weights within 1e-4 absolute (measured: <= 3.5e-6),
      while the 3 training steps themselves move the weights by ~4e-3 (asserted: > 1e-4), so a
      training difference of the size of one step would not pass. The evaluation of the two
      trained models then differs by < 1e-8 in every metric (asserted: < 1e-4).
    """
    one = tmp_path / "one"
    one.mkdir()
    texts = [e["prompt"] + e["completion"] for t in TASKS for e in get_task(t).build("train", 200, 7)]
    pythia = make_pythia_dir(tmp_path / "pythia-mini", texts)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    overrides = {**TINY, "model": str(pythia), "tasks": TASKS, "threads": 1,
                 # batches small enough that both processes get several: 48 train examples in 3
                 # global batches of 16 (8 per process); 12 test prompts in 3 batches of 4
                 "generate": {"batch_size": 8}, "evaluate": {"batch_size": 4, "diversity_samples": 12},
                 # the tolerances below are fp32 rounding: under bf16 autocast (what `auto` picks on
                 # a bf16 CPU) the one-process path (output layer at targets only) and DDP's (full
                 # logits) round differently at bf16's ~4e-3
                 "train": {**TINY["train"], "mixed_precision": "fp32"}}
    for key, value in overrides.items():
        params[key] = {**params[key], **value} if isinstance(value, dict) and key != "iterations" else value
    (one / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    timings = {}
    for verb in (["prepare"], ["tokenizer"], ["mix", "--iteration", "0"]):
        _run(one, *verb)
    timings["train 1"] = _run(one, "train", "--iteration", "0")
    timings["evaluate 1"] = _run(one, "evaluate", "--iteration", "0")
    _run(one, "gate", "--iteration", "0")
    timings["generate 1"] = _run(one, "generate", "--iteration", "1")

    two = tmp_path / "two"
    shutil.copytree(one, two)
    _set_processes(two, 2)
    for out in ("data/predictions", "metrics/iterations", "metrics/reliability", "data/synthetic"):
        shutil.rmtree(two / out)

    # 1. a fixed checkpoint (trained by one process): evaluate and generate match exactly
    timings["evaluate 2"] = _run(two, "evaluate", "--iteration", "0")
    timings["generate 2"] = _run(two, "generate", "--iteration", "1")
    for out in ("metrics/iterations/iter0.json", "metrics/reliability/iter0/bins10.json",
                *(f"data/predictions/iter0/{t}.jsonl" for t in TASKS),
                *(f"data/synthetic/raw/iter1/{t}.jsonl" for t in TASKS)):
        assert (two / out).read_bytes() == (one / out).read_bytes(), out

    # 2. training with 2 processes: same schedule, same losses and weights within float32 rounding
    shutil.rmtree(two / "models/iter0")
    shutil.rmtree(two / "metrics/train")
    timings["train 2"] = _run(two, "train", "--iteration", "0")
    report = {}
    for task in TASKS:
        l1, l2 = _losses(one, task), _losses(two, task)
        assert len(l1) == len(l2) == 3
        torch.testing.assert_close(torch.tensor(l2), torch.tensor(l1), rtol=1e-5, atol=0)
        w1 = load_file(one / f"models/iter0/{task}/model.safetensors")
        w2 = load_file(two / f"models/iter0/{task}/model.safetensors")
        start = load_file(pythia / "model.safetensors")
        assert set(w1) == set(w2)
        diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
        moved = max(float((w1[k] - start[k]).abs().max()) for k in w1)
        report[task] = {"max_loss_rel_diff": max(abs(a - b) / a for a, b in zip(l1, l2)), "max_weight_diff": diff,
                        "max_weight_change_in_training": moved}
        assert diff < 1e-4 < moved  # equal within rounding, yet training moved the weights far more
        training = json.loads((two / "models/iter0/training.json").read_text())
        assert training[task]["processes"] == 2 and training[task]["steps"] == 3
    # and the metrics of the 2-process model against the 1-process model's (same evaluation code)
    _run(two, "evaluate", "--iteration", "0")
    m1 = _numbers(json.loads((one / "metrics/iterations/iter0.json").read_text()))
    m2 = _numbers(json.loads((two / "metrics/iterations/iter0.json").read_text()))
    assert m1.keys() == m2.keys()
    report["metrics_max_abs_diff"] = max(abs(m1[k] - m2[k]) for k in m1)
    assert report["metrics_max_abs_diff"] < 1e-4
    print(json.dumps({"timings_s": {k: round(v, 1) for k, v in timings.items()}, **report}, indent=1))
