"""The code judge's verdict memo (synthmix.verdict_memo): what it keeps, what it answers, and that a
study's verdicts are the same with it and without it. Real judging in the real sandbox throughout."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from synthmix import sandbox, verdict_memo
from synthmix.sandbox import SandboxResult, decided
from synthmix.tasks.code import Code

#: completions for the first six test problems: right, wrong, refused by the guard, endless, right, crashing
SPECIAL = {
    1: "    return None\n",
    2: "    import socket\n    return socket.socket()\n",
    3: "    while True:\n        pass\n",
    5: "    raise SystemExit(0)\n",
}


@pytest.fixture
def memo_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "memo" / "judge-memo.sqlite"
    monkeypatch.setenv(verdict_memo.MEMO_ENV, str(path))
    return path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The solutions the real judge was asked about, in a list (check_function still runs)."""
    calls: list[str] = []
    real = sandbox.check_function

    def judge(solution: str, *args: object, **kwargs: object) -> SandboxResult:
        calls.append(solution)
        return real(solution, *args, **kwargs)

    monkeypatch.setattr(sandbox, "check_function", judge)
    return calls


def problems(n: int = 12) -> tuple[Code, list[dict], list[str]]:
    task = Code(timeout_s=1.0, jail="off")  # the guard: runs wherever the tests do
    examples = task.build("test", n, seed=3)
    completions = [SPECIAL.get(i, ex["completion"]) for i, ex in enumerate(examples)]
    return task, examples, completions


def statuses(task: Code, examples: list[dict], completions: list[str]) -> list[str]:
    return [s.extra["status"] for s in task.score(examples, completions)]


def test_judged_programs_are_answered_from_the_memo_the_same_way(memo_file: Path, counted: list[str]) -> None:
    task, examples, completions = problems()
    first = statuses(task, examples, completions)
    assert first[:6] == ["passed", "failed", "blocked", "timeout", "passed", "failed"]
    assert len(counted) == 12

    stored = dict(sqlite3.connect(memo_file).execute("SELECT status, COUNT(*) FROM verdicts GROUP BY status"))
    assert stored == {"passed": first.count("passed"), "failed": 2, "blocked": 1}  # no timeout kept

    counted.clear()
    assert statuses(task, examples, completions) == first
    assert len(counted) == 1 and "while True" in counted[0]  # only the timeout is judged again


def test_with_and_without_the_memo_the_verdicts_are_identical(memo_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                            counted: list[str]) -> None:
    task, examples, completions = problems()
    statuses(task, examples, completions)  # fill the memo
    memoised = task.score(examples, completions)
    monkeypatch.setenv(verdict_memo.MEMO_ENV, "off")
    counted.clear()
    fresh = task.score(examples, completions)
    assert len(counted) == 12  # off: every program judged
    assert memoised == fresh  # scores, bodies and extras (status, isolation)


def test_a_change_to_what_the_verdict_depends_on_is_judged_afresh(memo_file: Path, counted: list[str]) -> None:
    task, examples, completions = problems(3)  # passed, failed, blocked: all three kept
    statuses(task, examples, completions)
    counted.clear()
    statuses(task, examples, completions)
    assert counted == []
    task.timeout_s = 2.0  # another limit
    statuses(task, examples, completions)
    assert len(counted) == 3
    counted.clear()
    other = [dict(ex, tests=ex["tests"] + "\nassert True") for ex in examples]  # other tests
    statuses(task, other, completions)
    assert len(counted) == 3


def test_the_key_covers_every_input_and_the_judge() -> None:
    base = dict(fingerprint="f", solution="def f(x):\n    return x\n", entry_point="f", tests="assert f(1) == 1",
                context="", strict=True, timeout_s=3.0, memory_mb=256)
    key = verdict_memo.verdict_key(**base)
    changed = [dict(base, fingerprint="g"), dict(base, solution=base["solution"] + " "), dict(base, entry_point="g"),
               dict(base, tests="assert f(2) == 2"), dict(base, context="X = 1"), dict(base, strict=False),
               dict(base, timeout_s=3.5), dict(base, memory_mb=512),
               dict(base, solution="def f(x):\n", entry_point="    return x\nf")]  # the same text, split elsewhere
    keys = {verdict_memo.verdict_key(**c) for c in changed}
    assert key not in keys and len(keys) == len(changed)
    assert verdict_memo.judge_fingerprint("guard") != verdict_memo.judge_fingerprint("bubblewrap")


def test_an_edit_to_the_sandbox_changes_the_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = verdict_memo.judge_fingerprint("guard")
    edited = tmp_path / "sandbox.py"
    edited.write_bytes(Path(sandbox.__file__).read_bytes() + b"\n# an edit\n")
    monkeypatch.setattr(sandbox, "__file__", str(edited))
    assert verdict_memo.judge_fingerprint("guard") != before


@pytest.mark.parametrize(("status", "stderr", "kept"), [
    ("passed", "", True), ("blocked", "", True), ("failed", "sandbox: failed: AssertionError: assert f(1) == 2", True),
    ("failed", "sandbox: failed: no result from the test runner (exit -9): the tests did not run to their end", False),
    ("timeout", "", False), ("memory", "", False), ("error", "", False),
])
def test_only_what_the_program_decided_is_kept(status: str, stderr: str, kept: bool) -> None:
    assert decided(SandboxResult(status, 1, stderr, 0.1)) is kept


def test_off_and_the_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for off in ("off", "0", "false", ""):
        monkeypatch.setenv(verdict_memo.MEMO_ENV, off)
        assert verdict_memo.memo_path() is None and verdict_memo.VerdictMemo.from_env() is None
    monkeypatch.delenv(verdict_memo.MEMO_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert verdict_memo.memo_path() == tmp_path / "synthmix" / "judge-memo.sqlite"


def test_an_unusable_memo_warns_once_and_judging_goes_on(memo_file: Path, counted: list[str]) -> None:
    memo_file.parent.mkdir(parents=True)
    memo_file.write_bytes(b"this is not a database" * 100)
    task, examples, completions = problems(6)
    with pytest.warns(RuntimeWarning, match="judge memo .* unusable"):
        got = statuses(task, examples, completions)
    assert got == ["passed", "failed", "blocked", "timeout", "passed", "failed"] and len(counted) == 6


def _store(path: str, start: int) -> None:
    memo = verdict_memo.VerdictMemo(Path(path))
    for i in range(start, start + 200, 20):
        memo.put_many({f"k{j}": "passed" for j in range(i, i + 20)})


def test_processes_write_side_by_side(tmp_path: Path) -> None:
    """The workers (forked) and queued experiments write the same file at once; nothing is lost."""
    path = tmp_path / "memo.sqlite"
    memo = verdict_memo.VerdictMemo(path)
    memo.put_many({"before": "failed"})  # a connection open in the parent before the fork
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_store, args=(str(path), start)) for start in (0, 200, 400)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    found = memo.get_many([f"k{j}" for j in range(600)] + ["before", "never"])
    assert len(found) == 601 and found["before"] == "failed" and "never" not in found


def test_a_slurm_cell_keeps_its_memo_on_the_node(tmp_path: Path) -> None:
    """Inside a Slurm job the memo goes to the node's own disk (a cluster's home is often NFS, where
    SQLite's WAL does not work), unless the user said where, or off."""
    from synthmix.cluster import cell_env

    env = cell_env({"PATH": "/usr/bin"}, tmp_path)
    assert env[verdict_memo.MEMO_ENV] == str(tmp_path / "judge-memo.sqlite") and env["PATH"] == "/usr/bin"
    for chosen in ("off", "/scratch/me/memo.sqlite"):
        assert cell_env({verdict_memo.MEMO_ENV: chosen}, tmp_path)[verdict_memo.MEMO_ENV] == chosen
