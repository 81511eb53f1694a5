"""One process or many: relaunching a verb under `accelerate launch`, and sharding inference.

`accelerate.num_processes` in params.yaml is the only switch. With more than one process (or an
accelerate config file, e.g. FSDP on one GPU), `synthmix train|generate|evaluate` re-executes itself
as `python -m accelerate.commands.launch --num_processes N [--config_file F] -m synthmix.cli VERB ...`;
each launched process sees the launcher's environment (LOCAL_RANK, WORLD_SIZE) and runs the verb.

Inference is sharded by batch, not by prompt: the length-sorted batches are defined over all
prompts exactly as one process would form them, process r runs batches r, r+N, r+2N, ... (which
also balances long and short batches), and every result is gathered back to its prompt's
position. A sampled batch is seeded from (seed, batch number), so what a batch samples does not
depend on which process runs it: sampled outputs are the same for any process count (on the same
hardware; see docs/paper-scale.md for what does depend on it).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from synthmix.params import Params

T = TypeVar("T")

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def under_launcher() -> bool:
    """True inside a process started by accelerate launch / torchrun (or any torch.distributed launcher)."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def wants_launch(params: Params) -> bool:
    """Whether a distributed verb must relaunch itself under `accelerate launch`."""
    cfg = params.accelerate
    return (cfg.num_processes > 1 or cfg.config_file is not None) and not under_launcher()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(params: Params, verb_args: Sequence[str]) -> list[str]:
    """The `accelerate launch` command line that runs `synthmix <verb_args>` on every process."""
    cfg = params.accelerate
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(cfg.num_processes),
           "--num_machines", "1", "--main_process_port", str(cfg.main_process_port or _free_port())]
    if cfg.config_file is not None:
        if not Path(cfg.config_file).is_file():
            raise FileNotFoundError(f"accelerate.config_file: {cfg.config_file} does not exist")
        cmd += ["--config_file", cfg.config_file]
    else:
        # No config file: plain data parallel. `--multi_gpu` selects accelerate's torchrun launcher,
        # which starts the N processes; without CUDA they run on the CPU over gloo (`state()`).
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no"]
        if cfg.num_processes > 1:
            cmd += ["--multi_gpu"]
    return [*cmd, "-m", "synthmix.cli", *verb_args]


def relaunch(params: Params, verb_args: Sequence[str]) -> int:
    """Run `synthmix <verb_args>` under `accelerate launch`; its exit status."""
    cmd = launch_command(params, verb_args)
    print(f"synthmix: {params.accelerate.num_processes} process(es) via {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    return subprocess.call(cmd)


def state():
    """accelerate's process state (initialises torch.distributed under a launcher; gloo without CUDA)."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) outside a process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return rank_and_world()[0] == 0


def barrier() -> None:
    if rank_and_world()[1] > 1:
        torch.distributed.barrier()


def my_share(n_items: int) -> list[int]:
    """The item (batch) numbers this process handles: r, r+N, r+2N, ..."""
    rank, world = rank_and_world()
    return list(range(rank, n_items, world))


def gather_in_order(pairs: list[tuple[int, T]], n: int) -> list[T]:
    """Every process's (position, result) pairs, gathered on every process into one list by position."""
    if rank_and_world()[1] > 1:
        from accelerate.utils import gather_object

        pairs = gather_object(pairs)
    out: list[Any] = [None] * n
    for position, value in pairs:
        out[position] = value
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        raise RuntimeError(f"gather lost {len(missing)} of {n} results (first: {missing[:5]})")
    return out


def from_main(value: T) -> T:
    """The main process's `value`, on every process (the others' values are ignored)."""
    if rank_and_world()[1] > 1:
        from accelerate.utils import broadcast_object_list

        box = [value]
        broadcast_object_list(box, from_process=0)
        return box[0]
    return value


def batch_seed(seed: int, batch: int) -> int:
    """The RNG seed of sampled batch number `batch`: independent of which process runs it."""
    digest = hashlib.sha256(f"synthmix:{seed}:{batch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63 - 1)


def device() -> torch.device:
    """The device this process computes on (its GPU under a launcher, else cuda:0 or the CPU)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return state().device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
