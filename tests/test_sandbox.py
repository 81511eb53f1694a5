"""The sandbox classifies outcomes correctly and keeps the test process and its files intact."""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from synthmix.sandbox import SandboxResult, run_python


Runner = Callable[..., SandboxResult]


@pytest.fixture
def run(jail: str) -> Runner:
    """run_python on one isolation path; every test of this file runs on both (tests/conftest.py)."""

    def runner(source: str, **kw: float) -> SandboxResult:
        result = run_python(textwrap.dedent(source), jail=jail, **kw)  # type: ignore[arg-type]
        assert result.isolation == ("bubblewrap" if jail == "require" else "guard")
        return result

    return runner


def test_passing_program(run: Runner) -> None:
    r = run("def add(a, b):\n    return a + b\nassert add(2, 3) == 5\n")
    assert r.passed and r.status == "passed" and r.returncode == 0
    assert 0 < r.duration_s < 3


@pytest.mark.parametrize(
    ("source", "needle"),
    [("assert 1 + 1 == 3, 'bad sum'\n", "AssertionError: bad sum"), ("def f(:\n    pass\n", "SyntaxError")],
)
def test_failures_are_failed_with_the_traceback(source: str, needle: str, run: Runner) -> None:
    r = run(source)
    assert r.status == "failed" and not r.passed and r.returncode == 1
    assert needle in r.stderr


def test_sys_exit_code_is_kept(run: Runner) -> None:
    assert run("import sys; sys.exit(0)").status == "passed"
    r = run("import sys; sys.exit(3)")
    assert (r.status, r.returncode) == ("failed", 3)


def test_infinite_loop_times_out_promptly(run: Runner) -> None:
    r = run("while True:\n    pass\n", timeout_s=1.0)
    assert r.status == "timeout" and not r.passed
    assert 1.0 <= r.duration_s < 2.0


@pytest.mark.parametrize(
    "source",
    ["x = bytearray(10**10)\n", "xs = []\nwhile True:\n    xs.append(' ' * 10**6)\n"],
    ids=["one-huge-allocation", "growing-list"],
)
def test_memory_bombs_hit_the_memory_limit(source: str, run: Runner) -> None:
    r = run(source, memory_mb=256)
    assert r.status == "memory"
    assert r.duration_s < 3


def test_writing_outside_its_directory_is_blocked(tmp_path: Path, run: Runner) -> None:
    target = tmp_path / "escaped.txt"
    r = run(f"open({str(target)!r}, 'w').write('pwned')\n")
    assert r.status == "blocked" and "open" in r.stderr
    assert not target.exists()


def test_blocked_even_when_the_program_swallows_the_error(tmp_path: Path, run: Runner) -> None:
    target = tmp_path / "escaped.txt"
    r = run(f"""
        try:
            open({str(target)!r}, 'w')
        except BaseException:
            pass
        print('carried on')
    """)
    assert r.status == "blocked" and not target.exists()


def test_removing_and_renaming_outside_are_blocked(tmp_path: Path, run: Runner) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    assert run(f"import os; os.remove({str(victim)!r})").status == "blocked"
    assert run(f"open('x', 'w').close()\nimport os; os.replace('x', {str(victim)!r})").status == "blocked"
    assert run(f"import os; os.symlink({str(tmp_path)!r}, 'ln')\nopen('ln/keep.txt', 'w')").status == "blocked"
    assert victim.read_text() == "precious"


def test_writing_inside_its_own_directory_is_allowed(run: Runner) -> None:
    r = run("""
        import os, shutil, tempfile
        with open('out.txt', 'w') as f:
            f.write('hello')
        assert open('out.txt').read() == 'hello'
        os.makedirs('d/e')
        shutil.rmtree('d')
        with tempfile.NamedTemporaryFile() as f:  # TMPDIR points into the work directory
            f.write(b'x')
    """)
    assert r.status == "passed", r.stderr


def test_temporary_directory_is_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run: Runner) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's runs only (xdist runs others)
    r = run("import os, sys\nopen('junk.bin', 'wb').write(b'0' * 1000)\nprint(os.getcwd(), file=sys.stderr)\n")
    assert r.passed
    assert Path(r.stderr.strip().splitlines()[-1]).name == "work"
    assert list(tmp_path.glob("synthmix-sandbox-*")) == []  # the run's directory (candidate, stderr, work) is gone


@pytest.mark.parametrize(
    "source",
    [
        "import socket\nsocket.socket()\n",
        "import socket\ns = socket.create_connection(('127.0.0.1', 9), timeout=1)\n",
        "import socket\nsocket.getaddrinfo('localhost', 80)\n",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/', timeout=1)\n",
    ],
    ids=["socket", "connect", "getaddrinfo", "urllib"],
)
def test_network_is_blocked(source: str, run: Runner) -> None:
    r = run(source)
    assert r.status == "blocked" and "socket." in r.stderr


@pytest.mark.parametrize(
    "source",
    [
        "import os\nos.system('touch {p}')\n",
        "import subprocess\nsubprocess.run(['touch', '{p}'])\n",
        "import os\nos.execv('/usr/bin/touch', ['touch', '{p}'])\n",
        "import os\nos.posix_spawn('/usr/bin/touch', ['touch', '{p}'], {{}})\n",
        "import _posixsubprocess\n_posixsubprocess.fork_exec()\n",
    ],
    ids=["os.system", "subprocess", "execv", "posix_spawn", "fork_exec"],
)
def test_starting_programs_is_blocked(source: str, tmp_path: Path, run: Runner) -> None:
    marker = tmp_path / "touched"
    r = run(source.format(p=marker))
    assert r.status == "blocked"
    assert not marker.exists()


def test_fork_bomb_is_blocked(run: Runner) -> None:
    r = run("import os\nwhile True:\n    os.fork()\n")
    assert r.status == "blocked" and "os.fork" in r.stderr
    assert run("import multiprocessing as mp\nmp.Process(target=print).start()\n").status == "blocked"


def test_killing_the_parent_is_blocked_and_we_survive(run: Runner) -> None:
    me = os.getpid()
    r = run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
    assert r.status == "blocked" and "os.kill" in r.stderr
    assert os.getpid() == me  # still here
    r = run(f"import os\nos.killpg(os.getpgid({me}), 9)\n")
    # the guard refuses the kill; in the jail the test process is not even visible (no such process)
    assert r.status == ("blocked" if r.isolation == "guard" else "failed")
    assert r.isolation == "guard" or "ProcessLookupError" in r.stderr


def test_ctypes_and_rlimit_escapes_are_blocked(run: Runner) -> None:
    assert run("import ctypes\nctypes.CDLL('libc.so.6')\n").status == "blocked"
    assert run("import ctypes\nctypes.string_at(id(1), 8)\n").status == "blocked"
    assert run("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n").status == "blocked"


def test_no_inherited_secrets(monkeypatch: pytest.MonkeyPatch, run: Runner) -> None:
    monkeypatch.setenv("HF_TOKEN", "secret-value")
    assert run("import os\nassert 'HF_TOKEN' not in os.environ\n").passed


def test_unstartable_interpreter_is_error(monkeypatch: pytest.MonkeyPatch, run: Runner) -> None:
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    r = run("pass\n")
    assert r.status == "error" and r.returncode is None and not r.passed


def test_program_is_a_real_main_module(run: Runner) -> None:
    r = run('''
        def add(a, b):
            """
            >>> add(1, 2)
            3
            """
            return a + b

        if __name__ == "__main__":
            import doctest
            result = doctest.testmod()
            assert (result.attempted, result.failed) == (1, 0), result
    ''')
    assert r.passed, r.stderr


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch):
    """This machine as one without bubblewrap (bwrap not on PATH); the probe's cache reset around it."""
    from synthmix import sandbox

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(sandbox.JAIL_ENV, raising=False)
    sandbox._bwrap_probe.cache_clear()
    sandbox._warn_fallback.cache_clear()
    yield sandbox
    sandbox._bwrap_probe.cache_clear()
    sandbox._warn_fallback.cache_clear()


def test_without_bwrap_auto_falls_back_to_the_guard_with_one_warning(no_bwrap) -> None:
    with pytest.warns(RuntimeWarning, match="no jail \\(bwrap is not installed\\)") as seen:
        assert no_bwrap.resolve_jail("auto") == "guard"
        assert no_bwrap.resolve_jail("auto") == "guard"
    assert len(seen) == 1  # once per process, not once per program
    r = no_bwrap.run_python("print('hi')\n", jail="auto")
    assert r.passed and r.isolation == "guard"


def test_require_refuses_to_run_without_the_jail_and_says_how_to_get_it(no_bwrap, monkeypatch) -> None:
    with pytest.raises(no_bwrap.JailUnavailable, match="apt-get install bubblewrap"):
        no_bwrap.resolve_jail("require")
    monkeypatch.setenv(no_bwrap.JAIL_ENV, "require")  # the environment variable overrides the param
    with pytest.raises(no_bwrap.JailUnavailable):
        no_bwrap.resolve_jail("auto")
    monkeypatch.setenv(no_bwrap.JAIL_ENV, "off")
    assert no_bwrap.resolve_jail("require") == "guard"
    monkeypatch.setenv(no_bwrap.JAIL_ENV, "sometimes")
    with pytest.raises(ValueError, match="SYNTHMIX_JAIL='sometimes'"):
        no_bwrap.resolve_jail("auto")


def test_code_scoring_with_jail_require_fails_loudly_without_bwrap(no_bwrap) -> None:
    from synthmix.tasks.code import Code

    ex = Code().build("test", 1, seed=0)[0]
    with pytest.raises(no_bwrap.JailUnavailable):
        Code(jail="require").score([ex], [ex["completion"]])
