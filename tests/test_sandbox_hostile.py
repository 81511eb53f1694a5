"""A hostile-code corpus against pass@1's judge (`synthmix.sandbox.check_function`), on both paths.

Every case is a body for ``add_one(x)`` whose tests are three asserts. For every case: it does not
pass; the evaluator survives; nothing in a directory outside the candidate's changes; a secret
planted there appears in no output or result; the run ends within its limit plus one second; and
no process it started is left. A correct body passes on both paths (so the failures mean something).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from synthmix.sandbox import check_function

SIGNATURE = 'def add_one(x):\n    """Return x plus one."""\n'
TESTS = "assert add_one(1) == 2\nassert add_one(-5) == -4\nassert add_one(10) == 11\n"
LIMIT_S = 1.5
LINGER = "37.1234"  # a background `sleep` with this argument must not outlive the run

NOT_PASSED = ("failed", "blocked", "timeout", "memory")
# (id, body, statuses allowed on the guard path, statuses allowed in the jail)
CASES: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    # ---- exiting early, in every way: the tests never run to their end
    ("exit-builtin", "    exit()\n", ("failed",), ("failed",)),
    ("sys-exit-0", "    import sys\n    sys.exit(0)\n", ("failed",), ("failed",)),
    ("raise-SystemExit-0", "    raise SystemExit(0)\n", ("failed",), ("failed",)),
    ("os-_exit-0", "    import os\n    os._exit(0)\n", ("failed",), ("failed",)),
    ("kill-self", "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n", ("failed",), ("failed",)),
    ("raise-signal", "    import signal\n    signal.raise_signal(signal.SIGTERM)\n", ("failed",), ("failed",)),
    ("KeyboardInterrupt", "    raise KeyboardInterrupt\n", ("failed",), ("failed",)),
    ("atexit-exit-0", "    import atexit, os\n    atexit.register(os._exit, 0)\n    raise SystemExit(0)\n",
     ("failed",), ("failed",)),
    ("timer-thread-exit", "    import threading, os, time\n    threading.Timer(0.0, os._exit, (0,)).start()\n"
     "    time.sleep(1)\n", ("failed",), ("failed",)),
    # ---- results that claim equality with anything, or the wrong type
    ("eq-always-true", "    class E:\n        def __eq__(self, other):\n            return True\n    return E()\n",
     ("failed",), ("failed",)),
    ("int-subclass-eq", "    class I(int):\n        def __eq__(self, other):\n            return True\n"
     "        __hash__ = int.__hash__\n    return I(0)\n", ("failed",), ("failed",)),
    ("list-of-tricks", "    class E:\n        __eq__ = lambda s, o: True\n    return [E()]\n", ("failed",), ("failed",)),
    ("float-for-int", "    return float(x + 1)\n", ("failed",), ("failed",)),
    ("patch-builtins", "    import builtins\n    builtins.AssertionError = type('A', (Exception,), {})\n"
     "    builtins.isinstance = lambda *a: True\n    return 0\n", ("failed",), ("failed",)),
    # ---- altering or killing the test runner
    ("forge-result-line", "    import os\n    line = b'SANDBOX-RESULT {\"nonce\": \"0\", \"status\": \"passed\"}\\n'\n"
     "    for fd in range(0, 16):\n        try:\n            os.write(fd, line)\n        except OSError:\n"
     "            pass\n    return 0\n", ("failed",), ("failed",)),
    ("kill-runner", "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n", ("blocked",), ("blocked",)),
    ("kill-group", "    import os, signal\n    os.killpg(0, signal.SIGKILL)\n", ("blocked",), ("blocked",)),
    ("runner-memory", "    import os\n    open(f'/proc/{os.getppid()}/mem', 'rb').read(1)\n", ("blocked",), ("blocked",)),
    ("runner-fds", "    import os\n    return os.listdir(f'/proc/{os.getppid()}/fd')\n", ("failed",), ("failed",)),
    # ---- secrets outside the candidate's directory (the *_PATH placeholders are filled in)
    ("print-secret", "    print(open(SECRET_PATH).read())\n    return x + 1\n", ("blocked",), ("blocked", "failed")),
    ("raise-secret", "    raise ValueError(open(SECRET_PATH).read())\n", ("blocked",), ("blocked", "failed")),
    ("copy-secret", "    import shutil\n    shutil.copy(SECRET_PATH, 'copy.txt')\n    return x + 1\n",
     ("blocked",), ("blocked", "failed")),
    ("environ", "    raise ValueError(open('/proc/self/environ').read())\n", ("blocked",), ("blocked",)),
    ("cat-secret", "    import subprocess\n    raise ValueError(subprocess.run(['cat', SECRET_PATH], capture_output=True))\n",
     ("blocked",), ("blocked",)),
    # ---- writing or deleting outside
    ("overwrite", "    open(PRECIOUS_PATH, 'w').write('pwned')\n    return x + 1\n", ("blocked",), ("blocked", "failed")),
    ("remove", "    import os\n    os.remove(PRECIOUS_PATH)\n    return x + 1\n", ("blocked",), ("blocked", "failed")),
    ("rmtree", "    import shutil\n    shutil.rmtree(OUTSIDE_PATH)\n    return x + 1\n", ("blocked",), ("blocked", "failed")),
    ("rename", "    import os\n    os.rename(PRECIOUS_PATH, 'mine.txt')\n    return x + 1\n", ("blocked",), ("blocked", "failed")),
    ("chmod", "    import os\n    os.chmod(PRECIOUS_PATH, 0)\n    return x + 1\n", ("blocked",), ("blocked", "failed")),
    ("symlink-out", "    import os\n    os.symlink(OUTSIDE_PATH, 'ln')\n    open('ln/precious.txt', 'w').write('x')\n",
     ("blocked",), ("blocked", "failed")),
    # ---- bombs
    ("fork-bomb", "    import os\n    while True:\n        os.fork()\n", ("blocked",), ("blocked",)),
    ("thread-bomb", "    import threading, time\n    while True:\n"
     "        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n",
     ("failed", "memory", "timeout"), ("failed", "memory", "timeout")),
    ("memory-bomb", "    return bytearray(10**10)\n", ("memory",), ("memory",)),
    ("growing-list", "    xs = []\n    while True:\n        xs.append(' ' * 10**6)\n", ("memory",), ("memory",)),
    ("disk-bomb", "    i = 0\n    while True:\n        open(f'f{i}', 'wb').write(b'0' * 2**22)\n        i += 1\n",
     ("blocked", "timeout"), ("failed", "timeout")),
    ("stdout-bomb", "    while True:\n        print('x' * 10000)\n", ("timeout",), ("timeout",)),
    ("stderr-bomb", "    import sys\n    while True:\n        sys.stderr.write('x' * 100000)\n",
     ("failed", "timeout"), ("failed", "timeout")),
    # ---- network
    ("socket", "    import socket\n    socket.socket()\n    return x + 1\n", ("blocked",), ("blocked",)),
    ("connect", "    import socket\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n", ("blocked",), ("blocked",)),
    ("urllib", "    import urllib.request\n    urllib.request.urlopen('http://1.1.1.1/', timeout=1)\n",
     ("blocked",), ("blocked",)),
    # ---- signals, rlimits, ctypes
    ("ignore-signals", "    import signal\n    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGXCPU, signal.SIGHUP):\n"
     "        signal.signal(s, signal.SIG_IGN)\n    while True:\n        pass\n", ("timeout",), ("timeout",)),
    ("raise-rlimit", "    import resource\n    resource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n    return x + 1\n",
     ("blocked",), ("blocked",)),
    ("prlimit", "    import resource\n    resource.prlimit(0, resource.RLIMIT_CPU, (-1, -1))\n    return x + 1\n",
     ("blocked",), ("blocked",)),
    ("ctypes-system", "    import ctypes\n    ctypes.CDLL(None).system(b'sleep " + LINGER + " &')\n    return x + 1\n",
     ("blocked",), ("blocked",)),
    ("ctypes-memory", "    import ctypes\n    ctypes.memmove(id(1), id(2), 8)\n    return x + 1\n", ("blocked",), ("blocked",)),
    ("ctypes-reimport", "    import sys, importlib\n    sys.modules.pop('ctypes', None)\n    importlib.import_module('_ctypes')\n"
     "    return x + 1\n", ("blocked",), ("blocked",)),
    ("gc-walk", "    import gc\n    return len(gc.get_objects())\n", ("blocked",), ("blocked",)),
    # ---- processes that try to outlive the run
    ("double-fork", "    import os, time\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(30)\n    return x + 1\n",
     ("blocked",), ("blocked",)),
    ("popen-new-session", "    import subprocess\n    subprocess.Popen(['sleep', '" + LINGER + "'], start_new_session=True)\n"
     "    return x + 1\n", ("blocked",), ("blocked",)),
    ("daemon-process", "    import multiprocessing, time\n"
     "    multiprocessing.Process(target=time.sleep, args=(30,), daemon=True).start()\n    return x + 1\n",
     ("blocked",), ("blocked",)),
]


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, str]:
    """A directory outside the candidate's, holding a secret and a file that must not change."""
    d = tmp_path / "outside"
    d.mkdir()
    token = "SECRET-" + os.urandom(8).hex()
    (d / "secret.txt").write_text(token)
    (d / "precious.txt").write_text("precious")
    return d, token


def _snapshot(d: Path) -> dict[str, tuple[int, bytes | None]]:
    return {str(p.relative_to(d)): (p.stat().st_mode, p.read_bytes() if p.is_file() else None)
            for p in sorted(d.rglob("*"))} if d.exists() else {}


def _lingering() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if LINGER in cmdline and "pytest" not in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


def test_a_correct_body_passes(jail: str) -> None:
    r = check_function(SIGNATURE + "    return x + 1\n", "add_one", TESTS, strict=True, timeout_s=LIMIT_S, jail=jail)
    assert r.status == "passed", r.stderr
    assert "every test ran to its end (3 call(s))" in r.stderr


@pytest.mark.parametrize(("name", "body", "guard_ok", "jail_ok"), CASES, ids=[c[0] for c in CASES])
def test_hostile_body_fails_and_harms_nothing(
    name: str, body: str, guard_ok: tuple[str, ...], jail_ok: tuple[str, ...], jail: str, outside: tuple[Path, str]
) -> None:
    d, token = outside
    before = _snapshot(d)
    me = os.getpid()
    for placeholder, path in (("SECRET_PATH", d / "secret.txt"), ("PRECIOUS_PATH", d / "precious.txt"), ("OUTSIDE_PATH", d)):
        body = body.replace(placeholder, repr(str(path)))
    source = SIGNATURE + body
    started = time.monotonic()
    r = check_function(source, "add_one", TESTS, strict=True, timeout_s=LIMIT_S, jail=jail)
    elapsed = time.monotonic() - started
    allowed = guard_ok if r.isolation == "guard" else jail_ok
    assert r.status in allowed, f"{name}: {r.status} ({r.stderr[-600:]})"
    assert os.getpid() == me  # the evaluator survived
    assert _snapshot(d) == before  # nothing outside changed
    assert token not in r.stderr  # the secret is in no output and no result
    assert elapsed <= LIMIT_S + 1.0, f"{name}: {elapsed:.2f} s"
    assert _lingering() == []


def test_the_secret_is_there_to_be_read(outside: tuple[Path, str]) -> None:
    """Control for the secret cases: the same read from the evaluator itself does find the token."""
    d, token = outside
    assert (d / "secret.txt").read_text() == token


@pytest.mark.parametrize(
    ("tests", "strict", "status"),
    [
        ("assert add_one(1) == 2.0\n", False, "passed"),  # hub tests keep Python's ==
        ("assert add_one(1) == 2.0\n", True, "failed"),  # built-in tests compare type too
        ("assert add_one(1) != 2\n", True, "failed"),
        ("try:\n    add_one('a')\nexcept TypeError:\n    pass\nelse:\n    raise AssertionError\n", True, "passed"),
        ("assert add_one(x=4) == 5\nassert [add_one(i) for i in range(50)] == list(range(1, 51))\n", True, "passed"),
    ],
)
def test_equality_and_exceptions_cross_as_builtin_values(tests: str, strict: bool, status: str, jail: str) -> None:
    r = check_function(SIGNATURE + "    return x + 1\n", "add_one", tests, strict=strict, timeout_s=LIMIT_S, jail=jail)
    assert r.status == status, r.stderr


def test_only_plain_builtin_values_count_and_strict_equality_compares_types() -> None:
    from synthmix.sandbox import plain, same

    values = [None, True, 0, -(10**30), 1.5, float("inf"), "é", b"\x00\xff", (1, [2, (3,)]), {1: {"a": [1.0]}},
              {1, 2}, frozenset({"x"}), complex(1, -2), [], ()]
    assert all(plain(v) and same(v, v) for v in values)
    assert not same(1, True) and not same([1], [1.0]) and not same((1,), [1]) and not same({1: 1}, {1: 1.0})

    class Sneaky(int):
        pass

    assert not any(plain(v) for v in (Sneaky(1), object(), [lambda: 0], {"k": Sneaky(2)}, (1, [type])))


def test_context_gives_the_tests_the_prompts_helpers(jail: str) -> None:
    """HumanEval/32-style: the tests call a helper defined in the prompt (run by the trusted runner)."""
    prompt = 'def poly(xs, x):\n    return sum(c * x**i for i, c in enumerate(xs))\n\n\ndef root(xs):\n    """A root."""\n'
    tests = "def check(candidate):\n    assert abs(poly([-1, 1], candidate([-1, 1]))) < 1e-6\n\n\ncheck(root)\n"
    r = check_function(prompt + "    return 1.0\n", "root", tests, context=prompt + "\n    pass\n", jail=jail)
    assert r.status == "passed", r.stderr
    r = check_function(prompt + "    return 3.0\n", "root", tests, context=prompt + "\n    pass\n", jail=jail)
    assert r.status == "failed"
