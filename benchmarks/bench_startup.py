"""Start-up of the heavy verbs: cold (each process imports torch, transformers, great-expectations)
against warm (a child forked from the zygote that imported them once; synthmix/zygote.py).

Each verb runs in an empty project (the shipped params.yaml, no data), so it stops at its first
missing input: what is timed is everything before the verb's own work, through the real `synthmix`
console script. Cold and warm alternate, `--repeats` times; medians are compared.

    python benchmarks/bench_startup.py [--repeats 3]

Last line: `heavy-verb start-up: cold X.XXs, warm Y.YYs (slowest verb, medians)`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERBS = (
    ["tokenizer"],
    ["generate", "--iteration", "1"],
    ["validate", "--iteration", "1"],
    ["train", "--iteration", "0"],
    ["evaluate", "--iteration", "0"],
)


def _time(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    r = subprocess.run(["synthmix", *argv], cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if r.returncode == 0:
        raise SystemExit(f"synthmix {' '.join(argv)} ran to the end in an empty project: {r.stderr[-500:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="cold/warm rounds per verb (default: %(default)s)")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    runtime = Path(tempfile.mkdtemp(prefix="zg-", dir="/tmp"))
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    base = {k: v for k, v in os.environ.items() if k != "SYNTHMIX_ZYGOTE"}
    cold_env = {**base, "SYNTHMIX_ZYGOTE": "0"}
    warm_env = {**base, "XDG_RUNTIME_DIR": str(runtime)}
    try:
        started = time.perf_counter()
        _time(list(VERBS[0]), project, warm_env)  # starts the zygote in the background
        while not list(runtime.rglob("*.sock")):
            time.sleep(0.1)
        print(f"zygote ready {time.perf_counter() - started:.1f}s after the first call (its imports)")
        rows = []
        for argv in VERBS:
            cold, warm = [], []
            for _ in range(args.repeats):
                cold.append(_time(list(argv), project, cold_env))
                warm.append(_time(list(argv), project, warm_env))
            rows.append((" ".join(argv), statistics.median(cold), statistics.median(warm)))
            print(f"{rows[-1][0]:24s} cold {rows[-1][1]:6.2f}s  warm {rows[-1][2]:5.2f}s  "
                  f"({rows[-1][1] / rows[-1][2]:.1f}x)  runs cold {[round(c, 2) for c in cold]} warm {[round(w, 2) for w in warm]}")
        slowest_cold = max(cold for _, cold, _ in rows)
        slowest_warm = max(warm for _, _, warm in rows)
        print(f"heavy-verb start-up: cold {slowest_cold:.2f}s, warm {slowest_warm:.2f}s (slowest verb, medians)")
    finally:
        for sock in runtime.rglob("*.sock"):
            sock.unlink()  # the zygote exits within a second of losing its socket
        time.sleep(1.5)
        for log in runtime.rglob("*.log"):
            for line in log.read_text().splitlines():
                if "] serving" in line:
                    try:
                        os.kill(int(line.split("[")[1].split("]")[0]), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
        shutil.rmtree(project, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
