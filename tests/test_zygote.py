"""The warm start (synthmix.zygote) through the real `synthmix` console script: a heavy verb run in a
forked child behaves as if it ran in the caller (exit status, streams, working directory), a signal
to the caller reaches the stage, a killed caller leaves no stage running, and the zygote's key
follows what a child would otherwise inherit stale."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from synthmix import zygote

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runtime():
    """A runtime directory of this module's own (short: a socket path has ~100 characters), whose
    zygotes are stopped at the end (a zygote exits once its socket is removed)."""
    base = Path(tempfile.mkdtemp(prefix="zg-", dir="/tmp"))
    yield base
    for sock in base.rglob("*.sock"):
        sock.unlink()
    time.sleep(1.5)
    for log in base.rglob("*.log"):
        for pid in set(re.findall(r"\[(\d+)\] serving", log.read_text())):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(base, ignore_errors=True)


def _env(runtime: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), **extra}
    env.pop("SYNTHMIX_ZYGOTE", None)
    return env


def _log(runtime: Path) -> str:
    return "".join(log.read_text() for log in sorted(runtime.rglob("*.log")))


def _warm(runtime: Path, cwd: Path) -> None:
    """Call once (which starts the zygote in the background), then wait until it serves."""
    subprocess.run(["synthmix", "prepare", "--params", "missing.yaml"], cwd=cwd, env=_env(runtime),
                   capture_output=True, text=True, timeout=120)
    deadline = time.time() + 120
    while "serving" not in _log(runtime):
        assert time.time() < deadline, f"no zygote served within 120 s: {_log(runtime)!r}"
        time.sleep(0.2)


@pytest.fixture
def study(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_a_heavy_verb_runs_in_a_warm_child_with_the_callers_status_streams_and_directory(runtime, study):
    _warm(runtime, study)
    before = _log(runtime).count("prepare --params elsewhere.yaml")
    started = time.perf_counter()
    r = subprocess.run(["synthmix", "prepare", "--params", "elsewhere.yaml"], cwd=study, env=_env(runtime),
                       capture_output=True, text=True, timeout=120)
    warm_s = time.perf_counter() - started
    # the child's stderr is the caller's pipe, its status the caller's, its directory the caller's
    assert r.returncode == 2, r
    assert "elsewhere.yaml not found" in r.stderr
    log = _log(runtime)
    assert log.count("prepare --params elsewhere.yaml") == before + 2  # the request and its stage
    assert f"in {study}:" in log
    print(f"warm start: {warm_s:.2f} s")  # a figure, not an assertion (see benchmarks/)


def test_a_per_stage_variable_keeps_the_zygote_and_the_params_come_from_the_callers_directory(runtime, study):
    _warm(runtime, study)
    other = study / "elsewhere"
    other.mkdir()
    text = (study / "params.yaml").read_text()
    assert "\nratio: 0.2 " in text
    (other / "params.yaml").write_text(text.replace("\nratio: 0.2 ", "\nratio: 7 ", 1))
    r = subprocess.run(["synthmix", "prepare"], cwd=other, env=_env(runtime, DVC_ROOT=str(study)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "ratio" in r.stderr, r
    log = _log(runtime)
    assert f"prepare in {other}: supervisor" in log
    assert log.count("] serving") == 1  # DVC_ROOT differs per repository: no second zygote


def _stages(runtime: Path, verb: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"{verb}: stage (\d+)", _log(runtime))]


def _stage_pid(runtime: Path, verb: str, before: int, timeout_s: float = 120) -> int:
    """The pid of the first `verb` stage the zygote started after the `before` it had started."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = _stages(runtime, verb)
        if len(found) > before:
            return found[before]
        time.sleep(0.1)
    raise AssertionError(f"no {verb} stage started: {_log(runtime)!r}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_sigkilling_the_caller_kills_its_stage(runtime, study):
    _warm(runtime, study)
    before = len(_stages(runtime, "pretrain --size tiny"))
    caller = subprocess.Popen(["synthmix", "pretrain", "--size", "tiny"], cwd=study, env=_env(runtime),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stage = _stage_pid(runtime, "pretrain --size tiny", before)
    time.sleep(2)
    assert _alive(stage) and caller.poll() is None
    caller.kill()
    caller.wait()
    assert _gone_within(stage, 3.0), f"stage {stage} outlived its SIGKILLed caller"


def test_sigint_to_the_caller_interrupts_the_stage(runtime, study):
    _warm(runtime, study)
    before = len(_stages(runtime, "pretrain --size tiny"))
    caller = subprocess.Popen(["synthmix", "pretrain", "--size", "tiny"], cwd=study, env=_env(runtime),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stage = _stage_pid(runtime, "pretrain --size tiny", before)
    time.sleep(3)
    caller.send_signal(signal.SIGINT)
    _, err = caller.communicate(timeout=60)
    assert caller.returncode == 130, err[-2000:]
    assert "interrupted" in err
    assert _gone_within(stage, 3.0)


def test_off_runs_in_the_caller(tmp_path, study):
    runtime = tmp_path / "run"
    runtime.mkdir()
    r = subprocess.run(["synthmix", "prepare", "--params", "missing.yaml"], cwd=study,
                       env={**_env(runtime), "SYNTHMIX_ZYGOTE": "0"}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "missing.yaml not found" in r.stderr
    assert not any(runtime.iterdir())  # no zygote was started, none asked


def test_the_key_follows_what_a_child_would_inherit_stale():
    env = dict(os.environ)
    same = zygote.key(env)
    # read at import by transformers / tqdm / torch: a new zygote
    assert zygote.key({**env, "TRANSFORMERS_VERBOSITY": "error"}) != same
    assert zygote.key({**env, "TQDM_DISABLE": "1"}) != same
    # read at run time only, and different at every stage or test: the same zygote
    assert zygote.key({**env, "DVC_ROOT": "/elsewhere", "PYTEST_CURRENT_TEST": "x", "PWD": "/"}) == same
    # an edited source file: a new zygote (its imported modules would be stale)
    source = Path(zygote.__file__)
    st = source.stat()
    try:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert zygote.key(env) != same
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert zygote.key(env) == same


def test_a_long_first_stage_run_in_its_caller_restarts_the_zygotes_idle_clock(study):
    """The first heavy stage runs in its caller while the zygote imports. While it runs the zygote
    does not idle out, however long it takes (here: a pretrain interrupted `idle` + 3 s after the
    zygote serves and the stage began); when it ends it pings the zygote, whose idle clock restarts,
    so the zygote is still there for the next stage."""
    runtime = Path(tempfile.mkdtemp(prefix="zg-", dir="/tmp"))
    idle = 10
    env = _env(runtime, SYNTHMIX_ZYGOTE_IDLE=str(idle))
    try:
        # SIGINT at its default (a pytest-xdist worker ignores it, and so would its children):
        # Python then turns it into KeyboardInterrupt
        err_path = study / "caller.err"
        with err_path.open("w") as err_file:
            caller = subprocess.Popen(["synthmix", "pretrain", "--size", "tiny"], cwd=study, env=env,
                                      stdout=subprocess.DEVNULL, stderr=err_file,
                                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        # the zygote serves, and the caller is inside the verb (its corpus built: on a loaded
        # machine its imports alone can outlast a fixed wait, and a SIGINT there is no verb's)
        deadline = time.time() + 300
        while "serving" not in _log(runtime) or "pretrain tiny:" not in err_path.read_text():
            assert time.time() < deadline and caller.poll() is None, (_log(runtime), err_path.read_text()[-2000:])
            time.sleep(0.1)
        # longer than the idle exit: the running caller's mark keeps the zygote serving (before
        # it, a first stage longer than `idle` found the zygote gone, and its ping went nowhere)
        time.sleep(idle + 3)
        assert caller.poll() is None, "the stage must outlast the idle exit for this test"
        assert "idle: exiting" not in _log(runtime)
        caller.send_signal(signal.SIGINT)  # in-process: KeyboardInterrupt, exit 130, then the ping
        caller.wait(timeout=60)
        assert caller.returncode == 130, err_path.read_text()[-2000:]
        deadline = time.time() + idle + 30
        while "idle: exiting" not in _log(runtime):
            assert time.time() < deadline, _log(runtime)
            time.sleep(0.2)
        log = _log(runtime)
        assert "ping: a verb ran in its caller" in log
        stamp = lambda marker: time.mktime(time.strptime(  # noqa: E731
            next(line for line in log.splitlines() if marker in line)[:19], "%Y-%m-%d %H:%M:%S"))
        # not while the caller ran, and then `idle` s after its ping, not after it began serving
        assert stamp("idle: exiting") - stamp("] serving") >= 2 * idle + 2
        assert not list(runtime.rglob("*.busy.*"))  # the caller removed its mark
    finally:
        for sock in runtime.rglob("*.sock"):
            sock.unlink()
        time.sleep(1.5)
        shutil.rmtree(runtime, ignore_errors=True)


def test_a_signal_the_caller_ignores_stays_ignored_in_the_stage(runtime, study):
    """A background job's SIGINT is ignored; run through the zygote it must stay so (the stage keeps
    running), as it would in a process of its own."""
    _warm(runtime, study)
    before = len(_stages(runtime, "pretrain --size tiny"))
    caller = subprocess.Popen(["synthmix", "pretrain", "--size", "tiny"], cwd=study, env=_env(runtime),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    stage = _stage_pid(runtime, "pretrain --size tiny", before)
    time.sleep(2)
    caller.send_signal(signal.SIGINT)
    os.kill(stage, signal.SIGINT)  # not even sent to the stage itself does it stop
    time.sleep(2)
    assert caller.poll() is None and _alive(stage)
    caller.kill()
    caller.wait()
    assert _gone_within(stage, 3.0)
