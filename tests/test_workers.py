"""Tasks side by side in forked workers: the same results as one after another, errors named."""

import functools

import pytest
import torch

from synthmix import workers
from synthmix.params import parse_params


def _square_sum(task: str, scale: int) -> tuple[str, float, int]:
    torch.manual_seed(len(task))
    x = torch.randn(64, 64)
    return task, float((x @ x).sum()) * scale, torch.get_num_threads()


def _fails(task: str) -> int:
    if task == "b":
        raise ValueError("bad row 7")
    return 1


def test_workers_return_in_task_order_with_their_thread_count():
    fn = functools.partial(_square_sum, scale=2)
    tasks = ["a", "bb", "ccc", "dddd", "eeeee"]
    alone = workers.map_tasks(fn, tasks, workers=1)
    parallel = workers.map_tasks(fn, tasks, workers=2, threads=1)
    assert [r[0] for r in parallel] == tasks
    assert [r[1] for r in parallel] == pytest.approx([r[1] for r in alone], rel=1e-5)
    assert {r[2] for r in parallel} == {1}


def test_a_failing_task_is_named_in_the_parent():
    with pytest.raises(RuntimeError, match="task b: ValueError: bad row 7"):
        workers.map_tasks(_fails, ["a", "b", "c"], workers=2, threads=1)


def test_worker_count_follows_the_params():
    assert workers.count(parse_params({"workers": 3}), n_tasks=2) == 2
    assert workers.count(parse_params({"threads": 1}), n_tasks=5) == 1  # pinned threads: a parallel queue
    assert workers.count(parse_params({"model": "EleutherAI/pythia-410m"}), n_tasks=5) == 1
    auto = workers.count(parse_params({}), n_tasks=5)
    assert auto == (1 if torch.cuda.is_available() else min(workers.cores(), 5))


def _started(task: str, log: str) -> str:
    import os
    import time

    with open(os.path.join(log, task), "w") as f:
        f.write(str(time.monotonic_ns()))
    time.sleep(0.3)
    return task.upper()


def test_the_first_tasks_start_first_and_results_keep_the_task_order(tmp_path):
    # evaluate starts code first: judging its programs is most of the stage's time, and started
    # last it would run alone at the end
    tasks = ["a", "b", "c", "d", "code"]
    out = workers.map_tasks(functools.partial(_started, log=str(tmp_path)), tasks, workers=2, threads=1,
                            first=["code"])
    assert out == ["A", "B", "C", "D", "CODE"]
    start = {t: int((tmp_path / t).read_text()) for t in tasks}
    # the two workers start at once: the first two tasks in either order, the rest in turn
    assert set(sorted(tasks, key=start.get)[:2]) == {"code", "a"}
    assert start["code"] < start["b"] < start["c"] < start["d"]


def test_the_costliest_tasks_start_first_after_the_first_ones(tmp_path):
    # longest processing time first: train hands the largest training set out first, so the
    # longest task does not start last and run alone while the other core idles
    tasks = ["small", "large", "code", "medium", "tiny"]
    cost = {"small": 2.0, "large": 9.0, "code": 1.0, "medium": 5.0, "tiny": 0.5}.get
    assert workers.schedule(tasks, cost=cost) == [1, 3, 0, 2, 4]
    assert workers.schedule(tasks, first=["code"], cost=cost) == [2, 1, 3, 0, 4]
    assert workers.schedule(tasks) == [0, 1, 2, 3, 4]  # no estimate: the given order
    out = workers.map_tasks(functools.partial(_started, log=str(tmp_path)), tasks, workers=2, threads=1,
                            first=["code"], cost=cost)
    assert out == [t.upper() for t in tasks]  # results in the order of `tasks` all the same
    start = {t: int((tmp_path / t).read_text()) for t in tasks}
    assert set(sorted(tasks, key=start.get)[:2]) == {"code", "large"}  # the two workers start at once
    assert start["large"] < start["medium"] < start["small"] < start["tiny"]


def test_cost_estimates_read_the_files_and_count_a_missing_one_as_zero(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"a": 1}\n{"a": 22}\n{"a": 333}\n')
    assert workers.line_count(data) == 3
    assert workers.file_size(data) == len(data.read_bytes())
    assert workers.line_count(tmp_path / "missing.jsonl") == workers.file_size(tmp_path / "missing") == 0
