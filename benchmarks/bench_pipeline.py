"""Time the pipeline stage by stage, in a fresh copy of the project, through the real `dvc`.

    python benchmarks/bench_pipeline.py                 # the baseline (phase 0) only
    python benchmarks/bench_pipeline.py --study         # the whole default study (3 iterations)
    python benchmarks/bench_pipeline.py --study -S ratio=0.3

Prints each stage's wall time and share of the total, and two baselines measured in the same run:
the fixed cost of starting a stage process (`synthmix --help` importing torch and transformers),
and this machine's fp32 matmul rate, against which training throughput is expressed as model
FLOP utilisation (6 x parameters x tokens / time / peak).

Last, the floor under the whole run on this machine: every training stage's work (6 x non-embedding
parameters x trained tokens: a lower bound, leaving out attention and the output layer) at the
measured fp32 and bf16 matmul peaks, plus the other stages as they ran. A target below the floor
cannot be met by a faster training loop, only by less work (fewer tokens, a smaller model) or
faster other stages.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BASELINE_STAGES = ["pretrain", "prepare", "tokenizer", "baseline_mix", "baseline_train", "baseline_evaluate"]


def matmul_gflops(n: int = 1024, repeats: int = 20, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def process_start_seconds() -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import synthmix.train, synthmix.evaluation"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_pipeline: this Python ({sys.executable}) cannot import synthmix; install the "
                 f"project first (`python -m pip install -e .` in its root, or README line 1).\n"
                 + (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1])
    return time.perf_counter() - start


def copy_project(dest: Path) -> None:
    """The project as a fresh clone has it (every tracked file but dvc.lock, the tests and docs), in
    a new git repository: every stage runs, none comes from this checkout's cache or run-cache."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if name == "dvc.lock" or name.split("/")[0] in ("tests", "docs", "benchmarks"):
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    init = [] if (dest / ".dvc").is_dir() else [["dvc", "init", "-q"]]
    for cmd in (["git", "init", "-q"], *init, ["dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", *identity, "commit", "-qm", "benchmark"]):
        # a commit: `dvc exp run` needs one, and dvclive fails in a repository without any
        subprocess.run(cmd, cwd=dest, check=True)


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[dict[str, float], float]:
    """Run `cmd`, timestamping each 'Running stage' line; return stage -> seconds, and the total."""
    durations: dict[str, float] = {}
    current, started = None, time.perf_counter()
    mark = started
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: collections.deque[str] = collections.deque(maxlen=40)  # shown if the run fails
    for line in proc.stdout:
        tail.append(line)
        found = re.search(r"Running stage '([^']+)'", line)
        if found:
            now = time.perf_counter()
            if current:
                durations[current] = now - mark
            current, mark = found.group(1), now
    proc.wait()
    end = time.perf_counter()
    if current:
        durations[current] = end - mark
    if proc.returncode:
        sys.stderr.write("".join(tail))
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode} (its last lines above)")
    return durations, end - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", action="store_true", help="run every iteration, not only the baseline")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="param override, as dvc exp run -S")
    parser.add_argument("--judge-memo", choices=("fresh", "shared", "off"), default="fresh",
                        help="the code judge's verdict memo (synthmix.verdict_memo): fresh (default: an empty one, "
                             "as on a new machine), shared (this user's, as SYNTHMIX_JUDGE_MEMO says), off")
    args = parser.parse_args()
    env = dict(os.environ)

    peak, peak_bf16 = matmul_gflops(), matmul_gflops(dtype=torch.bfloat16)
    overhead = process_start_seconds()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as memo_dir:
        if args.judge_memo != "shared":
            env["SYNTHMIX_JUDGE_MEMO"] = "off" if args.judge_memo == "off" else str(Path(memo_dir) / "judge-memo.sqlite")
        repo = Path(tmp)
        copy_project(repo)
        if args.study:
            cmd = ["dvc", "exp", "run", *sum((["-S", o] for o in args.overrides), [])]
        else:
            cmd = ["dvc", "repro", *BASELINE_STAGES]
        durations, total = run_timed(cmd, repo, env)
        training = json.loads((repo / "models/iter0/training.json").read_text())
        phases = {}
        for path in sorted(repo.glob("models/iter*/training.json")):
            tasks = json.loads(path.read_text())
            phases[path.parent.name] = (tasks, non_embedding(path.parent, tasks))

    print(f"\n{'stage':<22}{'seconds':>9}{'share':>8}{'x start-up':>12}")
    for stage, seconds in durations.items():
        print(f"{stage:<22}{seconds:>9.1f}{seconds / total:>8.0%}{seconds / overhead:>12.1f}")
    print(f"{'total':<22}{total:>9.1f}   (judge memo: {args.judge_memo})")
    print(f"\nbaseline: stage process start-up (imports) {overhead:.1f}s; fp32 matmul {peak:.0f} GFLOP/s")
    print(f"\n{'task (iter0)':<14}{'params':>9}{'examples':>10}{'train s':>9}{'tokens/s':>10}{'MFU':>7}")
    for task, t in training.items():
        flops = 6 * t["parameters"] * t["tokens_per_second"] / 1e9
        print(f"{task:<14}{t['parameters'] / 1e6:>8.2f}M{t['examples']:>10}{t['seconds']:>9.1f}"
              f"{t['tokens_per_second']:>10.0f}{flops / peak:>7.0%}")
    print_floor(durations, total, phases, peak, peak_bf16)


def non_embedding(model_dir: Path, tasks: dict) -> int:
    """A phase's parameters (`tasks`: its training.json) less the input embedding and the output
    layer (a lookup, and a projection run at the target positions only): what 6 x N x tokens counts."""
    sizes = set()
    for config_path in model_dir.glob("*/config.json"):
        config = json.loads(config_path.read_text())
        tables = 1 if config.get("tie_word_embeddings") else 2
        sizes.add(config["vocab_size"] * config["hidden_size"] * tables)
    (size,) = sizes  # one ladder size per phase
    (total,) = {t["parameters"] for t in tasks.values()}
    return total - size


def print_floor(durations: dict[str, float], total: float, phases: dict, peak: float, peak_bf16: float) -> None:
    # the fine-tuning phases whose work is counted (not `pretrain`: its base is not a phase here)
    train_seconds = sum(s for stage, s in durations.items() if stage == "baseline_train" or stage.startswith("train@"))
    work = sum(6 * n * t["tokens_per_second"] * t["seconds"] for tasks, n in phases.values() for t in tasks.values())
    other = total - train_seconds
    print(f"\nfloor: {len(phases)} training phases, {work / 1e12:.2f} TFLOP (6 x non-embedding parameters x tokens)")
    print(f"  training measured {train_seconds:.0f}s ({work / train_seconds / 1e9:.0f} GFLOP/s); "
          f"at the fp32 peak {work / peak / 1e9:.0f}s, at the bf16 peak {work / peak_bf16 / 1e9:.0f}s")
    print(f"  other stages {other:.0f}s -> the whole run no faster than {other + work / peak / 1e9:.0f}s "
          f"(fp32 peak), {other + work / peak_bf16 / 1e9:.0f}s (bf16 peak); measured {total:.0f}s")


if __name__ == "__main__":
    main()
