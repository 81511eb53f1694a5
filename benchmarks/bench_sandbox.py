"""What pass@1's judge costs per program: the bubblewrap jail against the guard-only fallback, and
both against the old single-process run (the whole program, passed on exit status), in one run.

    python benchmarks/bench_sandbox.py                 # 200 built-in test problems, 2 workers
    python benchmarks/bench_sandbox.py --n 100 --workers 1

Every path judges the same gold bodies of the built-in code family's test split (all must pass):

- jail:   `check_function(..., jail="require")`: runner + worker processes inside bwrap;
- guard:  `check_function(..., jail="off")`: runner + worker under the audit-hook guard;
- single: `run_python(prompt + body + tests, jail="off")`: one guarded process, exit status only
  (what scoring did before the two-process judge; fakeable, shown only as the cost floor).

Figures are wall-clock milliseconds per program at the given thread-pool width, and the ratios.

Then the verdict memo (synthmix.verdict_memo) through the scorer itself (`Code.score`, the jail
`auto` picks), with a fresh memo file: off (every program judged), cold (an empty memo: judging
plus storing), and 95% warm (95% of the problems judged before, as 95-98% of an iteration's code
answers repeat an earlier iteration's in the default study), each against off.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from synthmix.sandbox import _bwrap_probe, check_function, run_python
from synthmix.tasks.code import Code, context, program, solution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="problems (default 200, the built-in test size)")
    parser.add_argument("--workers", type=int, default=2, help="programs at a time (default 2, the scorer's)")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the problems per path (best kept)")
    args = parser.parse_args()
    problems = Code().build("test", args.n, seed=0)

    def jobs(kind: str):
        def one(ex: dict) -> str:
            if kind == "single":
                return run_python(program(ex["prompt"], ex["completion"], ex["tests"]), jail="off").status
            return check_function(solution(ex["prompt"], ex["completion"]), ex["entry_point"], ex["tests"],
                                  context=context(ex["prompt"]), strict=True,
                                  jail="require" if kind == "jail" else "off").status
        return one

    kinds = ["single", "guard"] + (["jail"] if _bwrap_probe()[0] is not None else [])
    if "jail" not in kinds:
        print(f"bubblewrap unavailable here ({_bwrap_probe()[1]}): jail not measured")
    per_program: dict[str, float] = {}
    for kind in kinds:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                statuses = list(pool.map(jobs(kind), problems))
            best = min(best, time.perf_counter() - start)
            bad = [s for s in statuses if s != "passed"]
            assert not bad, f"{kind}: {len(bad)} gold bodies did not pass: {bad[:5]}"
        per_program[kind] = 1000 * best / len(problems)
        print(f"{kind:>6}: {per_program[kind]:6.1f} ms/program  ({len(problems)} programs, {args.workers} at a time, "
              f"best of {args.repeats})")
    if "jail" in per_program:
        print(f"jail / guard:  {per_program['jail'] / per_program['guard']:.2f}x the time")
    print(f"guard / single: {per_program['guard'] / per_program['single']:.2f}x the time")
    bench_memo(problems, args.workers)


def bench_memo(problems: list[dict], workers: int) -> None:
    task = Code(workers=workers)
    gold = [ex["completion"] for ex in problems]
    seen = int(len(problems) * 0.95)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("off", "cold", "95% warm"):
            os.environ["SYNTHMIX_JUDGE_MEMO"] = "off" if case == "off" else os.path.join(tmp, f"{case[:2]}.sqlite")
            if case == "95% warm":
                task.score(problems[:seen], gold[:seen])
            start = time.perf_counter()
            scored = task.score(problems, gold)
            figures[case] = 1000 * (time.perf_counter() - start) / len(problems)
            assert all(s.correct == 1.0 for s in scored), f"memo {case}: a gold body did not pass"
    for case, ms in figures.items():
        print(f"memo {case:>8}: {ms:6.1f} ms/program  ({figures['off'] / ms:.2f}x off)  Code.score, {len(problems)} programs")


if __name__ == "__main__":
    main()
