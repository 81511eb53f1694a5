"""Run untrusted, model-written Python: in a bubblewrap jail where the machine has one, and score
a function against its tests so that the score can't be faked.

Two entry points:

* ``check_function(solution, entry_point, tests)`` - pass@1's judge. The candidate's code and the
  tests run in **two processes**: the *worker* (B) executes ``solution`` (the prompt plus the
  model's body) under the guard below and answers calls; the *runner* (A) executes the trusted
  ``context`` (the prompt's helpers) and ``tests``, in which the entry point is a proxy that sends
  each call's arguments to B and reads B's answer. Values cross as `marshal` data, which holds
  plain built-in types only (int, float, str, bytes, bool, None, list, tuple, dict, set,
  frozenset, complex; no subclasses), and A checks every one again (`plain`): an object whose
  ``__eq__`` answers True to anything cannot even be returned. ``strict`` tests (the built-in
  family's) also compare types (``1 != 1.0 != True``).
  B never sees the tests or the expected values, and A is not dumpable (no ``/proc/A/mem``).
  A alone decides: it writes one result line, carrying a per-run nonce, after the last test ran
  to its end. Exiting early in any way (``exit()``, ``SystemExit(0)``, ``os._exit(0)``, a signal)
  ends B mid-call, which A counts as a failure; killing or altering A is impossible from B, and if
  it happened there would be no result line: a failure again. An exit status is never enough.
* ``run_python(source)`` - run a whole program under the same limits; it passes when it exits 0.
  For programs, not for scoring (it proves nothing about which code ran).

The child side is `synthmix._sandbox_child`, run precompiled (``boot.pyc``): it imports only what
an interpreter loads at start, since every judged program starts two interpreters.

Isolation, chosen by ``jail`` (``auto`` | ``require`` | ``off``; the environment variable
``SYNTHMIX_JAIL`` overrides it):

* **bubblewrap** (``bwrap``; ``auto`` uses it when it starts here, ``require`` fails without it):
  a new root on tmpfs, read-only, holding only the shared libraries (``/usr/lib*``), the
  interpreter and its standard library (``site-packages`` hidden); the program's directory a
  64 MiB tmpfs (its one writable place), ``/tmp`` a 16 MiB tmpfs; new user (uid 65534, no
  capabilities), pid, network, ipc, uts and cgroup namespaces; ``--die-with-parent``: when the run
  ends, its pid namespace ends and every process it started dies. No home, repository, secret
  or other process is visible.
* **guard** (the fallback, with a one-line warning; ``off`` forces it): no jail. The worker's
  audit hook and rlimits below are all there is; files are the host's, only refused by the hook.

On both paths the worker (and ``run_python``'s program) runs ``python -I -S -B`` (no site-packages,
no environment), with:

* rlimits: address space (``memory_mb``), CPU seconds (timeout + 1), file size (16 MiB), no core
  files, and for non-root users a process count that leaves no room to fork or start threads;
  at most 64 new files (so at most 1 GiB of disk on the guard path; the jail's tmpfs holds 64 MiB);
* the network namespace unshared when it can be (root) - the jail has its own anyway;
* a ``sys.addaudithook`` hook that refuses every ``socket.*`` event; opening a file for writing,
  or changing a path, outside the program's directory; opening for reading outside it, the
  standard library and ``/dev/{null,zero,urandom}`` (so a secret elsewhere can't be read), and all
  of ``/proc``; ``subprocess``, ``os.system``, ``os.exec*``/``spawn*``/``posix_spawn``/``fork``;
  ``os.kill``/``killpg`` of any other process;
  ``resource.setrlimit``/``prlimit``; importing ``ctypes`` (its ``memmove`` reaches raw memory
  without an audit event) or CPython's test modules; ``gc``'s object walks. A refusal prints a marker with a per-run nonce to stderr and
  raises ``SandboxViolation`` (a ``BaseException``); the run reports ``blocked`` even if the
  program caught it and carried on.

The parent kills the whole process group (and with it the jail) at the wall-clock limit and
after every run, keeps stdout in ``/dev/null`` and stderr in a size-capped file, and always
removes the temporary directory. What the guard alone does NOT stop: audit hooks are a CPython
convenience, not a security boundary - code that deliberately tampers with the interpreter
(re-created extension modules, TOCTOU races with symlinks) can get past them; on the guard path
that leaves the host's files and, for non-root users, the network open to such code. Use the jail.
"""

from __future__ import annotations

import ast
import functools
import marshal
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthmix import _sandbox_child as child
from synthmix._sandbox_child import SandboxViolation, plain, same  # noqa: F401 (the public names)

_STDERR_TAIL = 2000
_WORK_TMPFS_BYTES = 64 * 2**20
_TMP_TMPFS_BYTES = 16 * 2**20
_BLOCKED_MARKER = "SANDBOX-BLOCKED"
JAIL_MODES = ("auto", "require", "off")
JAIL_ENV = "SYNTHMIX_JAIL"
STATUSES = ("passed", "failed", "timeout", "memory", "blocked", "error")


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run."""

    status: str  # one of STATUSES
    returncode: int | None
    stderr: str  # last ~2000 chars (for check_function, ending with the runner's verdict)
    duration_s: float
    isolation: str = "guard"  # "bubblewrap" | "guard"

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class JailUnavailable(RuntimeError):
    """`jail: require` (or SYNTHMIX_JAIL=require) and bubblewrap can't run here."""


# ----------------------------------------------------------------------------- choosing the jail


def resolve_jail(mode: str = "auto") -> str:
    """The isolation a run gets: "bubblewrap" or "guard". `SYNTHMIX_JAIL`, when set, overrides `mode`.

    auto: bubblewrap when it starts here, else the guard with a one-line warning (once per process);
    require: bubblewrap or JailUnavailable, saying why; off: the guard."""
    env = os.environ.get(JAIL_ENV, "").strip().lower()
    if env:
        if env not in JAIL_MODES:
            raise ValueError(f"{JAIL_ENV}={env!r}: expected one of {', '.join(JAIL_MODES)}")
        mode = env
    if mode not in JAIL_MODES:
        raise ValueError(f"jail: {mode!r}: expected one of {', '.join(JAIL_MODES)}")
    if mode == "off":
        return "guard"
    flags, why = _bwrap_probe()
    if flags is not None:
        return "bubblewrap"
    if mode == "require":
        raise JailUnavailable(
            f"the code sandbox must run in bubblewrap (jail: require / {JAIL_ENV}=require) but {why}; "
            "install it (Debian: apt-get install bubblewrap) or set evaluate.code_jail: auto"
        )
    _warn_fallback(why)
    return "guard"


@functools.lru_cache(maxsize=1)
def _warn_fallback(why: str) -> None:
    warnings.warn(f"code sandbox: no jail ({why}); running model-written code under the audit-hook guard "
                  "only (evaluate.code_jail: require refuses to)", RuntimeWarning, stacklevel=3)


@functools.lru_cache(maxsize=1)
def _bwrap_probe() -> tuple[tuple[str, ...] | None, str]:
    """(namespace flags bwrap accepts here, "") or (None, why not). Tried once per process."""
    exe = shutil.which("bwrap")
    if exe is None:
        return None, "bwrap is not installed"
    why = "bwrap failed"
    for flags in (("--unshare-user", "--uid", "65534", "--gid", "65534"), ()):
        # the jail as runs get it (its work dir is a tmpfs of its own), with no files bound in
        argv = _bwrap_argv(exe, flags, {}) + [_jail_python(), "-I", "-S", "-B", "-c", "import os; os.listdir('.')"]
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = f"bwrap did not start ({exc})"
            continue
        if done.returncode == 0:
            return flags, ""
        why = f"bwrap failed: {done.stderr.decode(errors='replace').strip()[:200] or f'exit {done.returncode}'}"
    return None, why


def _jail_python() -> str:
    return os.path.realpath(sys.executable)  # a venv's python is a link to the base interpreter


def _bwrap_argv(exe: str, flags: tuple[str, ...], files: dict[str, str]) -> list[str]:
    """bwrap's command line up to the program: a read-only root of only what Python needs."""
    import sysconfig

    argv = [exe, "--unshare-all", *flags, "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    bound: list[str] = []

    def ro(path: str) -> None:
        path = os.path.realpath(path)
        if os.path.exists(path) and not any(path == b or path.startswith(b + os.sep) for b in bound):
            argv.extend(["--ro-bind", path, path])
            bound.append(path)

    for lib in ("/usr/lib", "/usr/lib64"):
        ro(lib)
    for top in ("/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            argv.extend(["--symlink", os.readlink(top), top])
        elif os.path.isdir(top):
            ro(top)
    python = _jail_python()
    ro(python)
    config = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):
        ro(config[key])
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and sysconfig.get_config_var("Py_ENABLE_SHARED"):
        ro(libdir)  # libpython (pyenv's, or any python built --enable-shared outside /usr/lib)
    hidden = {os.path.realpath(config[k]) for k in ("purelib", "platlib")}
    hidden |= {os.path.realpath(p) for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    for path in sorted(hidden):  # hide installed packages (and their secrets, tokens, editable repos)
        if os.path.isdir(path) and any(path.startswith(b + os.sep) for b in bound):
            argv.extend(["--tmpfs", path])
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(_TMP_TMPFS_BYTES), "--tmpfs", "/tmp",
             "--size", str(_WORK_TMPFS_BYTES), "--tmpfs", "/sandbox/work"]
    for inside, outside in files.items():
        argv.extend(["--ro-bind", outside, inside])
    argv += ["--chdir", "/sandbox/work", "--remount-ro", "/", "--clearenv"]
    for key, value in _child_env("/sandbox/work").items():
        argv.extend(["--setenv", key, value])
    return argv + ["--"]


# ----------------------------------------------------------------------------- parent side


def run_python(source: str, timeout_s: float = 3.0, memory_mb: int = 256, jail: str = "auto") -> SandboxResult:
    """Run `source` as a whole program under the limits; "passed" iff it exits 0 and nothing was blocked."""
    return _launch("program", source, None, timeout_s, memory_mb, jail)


def check_function(
    solution: str, entry_point: str, tests: str, context: str = "", strict: bool = False,
    timeout_s: float = 3.0, memory_mb: int = 256, jail: str = "auto",
) -> SandboxResult:
    """Run `tests` against `entry_point` of `solution`, the two in separate processes (module doc).

    `solution` (untrusted) is executed by the worker; `context` (trusted: e.g. the prompt with a
    stub body, for the helpers HumanEval's tests call) and `tests` by the runner, where
    `entry_point` calls into the worker. With `strict`, ``==`` and ``!=`` in the tests compare
    types as well. "passed" only when the runner saw every test run to its end."""
    start = time.monotonic()
    try:
        tree = ast.parse(tests, "tests.py")
        if strict:
            tree = ast.fix_missing_locations(_StrictEquality().visit(tree))
        payload = {
            "tests": compile(tree, "tests.py", "exec"),  # compiled here: the runner needs no compiler
            "context": compile(context, "context.py", "exec") if context else None,
            "entry_point": entry_point,
        }
    except (SyntaxError, ValueError) as exc:
        return SandboxResult("error", None, f"sandbox: the tests or context do not compile: {exc}",
                             time.monotonic() - start)
    return _launch("runner", solution, payload, timeout_s, memory_mb, jail)


class _StrictEquality(ast.NodeTransformer):
    """`a == b` -> `__synthmix_same__(a, b)` and `a != b` -> `not ...`, in the (trusted) tests."""

    def visit_Compare(self, node: ast.Compare) -> Any:
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            call = ast.Call(ast.Name("__synthmix_same__", ast.Load()), [node.left, node.comparators[0]], [])
            return call if isinstance(node.ops[0], ast.Eq) else ast.UnaryOp(ast.Not(), call)
        return node


@functools.lru_cache(maxsize=1)
def _bootstrap_pyc() -> bytes:
    """The child side (synthmix._sandbox_child) compiled once per process: every run starts two
    interpreters that would otherwise each compile it again (-B: no cache written)."""
    import importlib.util

    source = Path(child.__file__).read_bytes()
    code = compile(source, "sandbox-boot", "exec")
    flags = (0b11).to_bytes(4, "little")  # a hash-based pyc, never checked against a source
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)


def _launch(role: str, source: str, payload: dict[str, Any] | None, timeout_s: float, memory_mb: int,
            jail: str) -> SandboxResult:
    start = time.monotonic()
    root: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    isolation = "guard"
    try:
        isolation = resolve_jail(jail)
        if not os.path.isfile(sys.executable):
            raise OSError(f"no Python interpreter at {sys.executable}")
        root = tempfile.mkdtemp(prefix="synthmix-sandbox-")
        work = os.path.join(root, "work")
        os.mkdir(work)
        host_candidate, host_boot = os.path.join(root, "candidate.py"), os.path.join(root, "boot.pyc")
        with open(host_candidate, "w", encoding="utf-8") as f:
            f.write(source)
        with open(host_boot, "wb") as f:
            f.write(_bootstrap_pyc())
        if isolation == "bubblewrap":
            flags, _ = _bwrap_probe()
            mounts = {"/sandbox/boot.pyc": host_boot, "/sandbox/candidate.py": host_candidate}
            prefix = _bwrap_argv(shutil.which("bwrap") or "bwrap", flags or (), mounts)
            python, boot, candidate, workdir = _jail_python(), "/sandbox/boot.pyc", "/sandbox/candidate.py", "/sandbox/work"
        else:
            prefix, python, boot, candidate, workdir = [], sys.executable, host_boot, host_candidate, work
        spec = {
            "candidate": candidate, "workdir": workdir, "python": python, "boot": boot,
            "marker": f"{_BLOCKED_MARKER}[{os.urandom(8).hex()}]",  # a program can't fake a block
            "memory_bytes": int(memory_mb) * 2**20, "cpu_s": math.ceil(timeout_s) + 1,
        }
        argv = prefix + [python, "-I", "-S", "-B", boot, role, marshal.dumps(spec).hex()]
        err_path = os.path.join(root, "stderr.txt")
        piped = subprocess.PIPE if payload is not None else subprocess.DEVNULL
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(argv, cwd=work, env=_child_env(work), stdin=piped, stdout=piped, stderr=err,
                                    start_new_session=True, close_fds=True)
        nonce = os.urandom(16).hex()
        if payload is not None:
            assert proc.stdin is not None
            data = marshal.dumps({**payload, "nonce": nonce})
            try:
                proc.stdin.write(len(data).to_bytes(8, "little") + data)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        timed_out = not _wait_unreaped(proc, timeout_s)
        _kill_group(proc)  # a hung program, or anything it left behind in its group (the jail with it)
        proc.wait()
        out = b""
        if proc.stdout is not None:
            out = proc.stdout.read(1 << 16)
            proc.stdout.close()
        with open(err_path, "rb") as f:
            stderr = f.read().decode("utf-8", errors="replace")
        if payload is None:
            status = _classify(proc.returncode, timed_out, stderr, spec["marker"])
        else:
            status, verdict = _verdict(out, nonce, proc.returncode, timed_out)
            stderr = f"{stderr.rstrip()}\n{verdict}\n"
        return SandboxResult(status, proc.returncode, _tail(stderr, status), time.monotonic() - start, isolation)
    except (OSError, ValueError) as exc:  # could not even start (or read back) the child
        return SandboxResult("error", None, f"sandbox error: {exc!r}", time.monotonic() - start, isolation)
    finally:
        if proc is not None and proc.returncode is None:  # e.g. KeyboardInterrupt in wait
            _kill_group(proc)
            proc.wait()
        if root is not None:
            shutil.rmtree(root, onerror=_force_remove)


_NO_RESULT = "no result from the test runner"


def decided(result: SandboxResult) -> bool:
    """Whether the program alone decided `result`, so that judging it again gives the same status:
    passed, blocked, or failed as the test runner reported it. Not a timeout, memory, error, or a
    failure with no result line (the runner killed, e.g. by the kernel): those can follow from the
    machine's load. What `synthmix.verdict_memo` may keep."""
    return result.status in ("passed", "blocked") or (result.status == "failed" and _NO_RESULT not in result.stderr)


def _verdict(out: bytes, nonce: str, rc: int | None, timed_out: bool) -> tuple[str, str]:
    """The runner's result (it must carry this run's nonce): (status, its human-readable detail)."""
    if timed_out:
        return "timeout", "sandbox: timeout: the run hit its wall-clock limit"
    try:
        size = int.from_bytes(out[:8], "little")
        result = marshal.loads(out[8 : 8 + size]) if len(out) >= 8 + size > 8 else None
    except (ValueError, EOFError, TypeError):
        result = None
    if type(result) is dict and result.get("nonce") == nonce and result.get("status") in STATUSES:
        return result["status"], f"sandbox: {result['status']}: {result.get('detail', '')}"
    if rc == child.RC_BOOT_ERROR:
        return "error", "sandbox: error: the test runner could not start"
    return "failed", f"sandbox: failed: {_NO_RESULT} (exit {rc}): the tests did not run to their end"


def _child_env(work: str) -> dict[str, str]:
    # Nothing inherited: no tokens, no proxies; one thread for any BLAS the program imports.
    env = {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8"}
    env.update({v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    return env


def _wait_unreaped(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait for exit without reaping, so the group id cannot be recycled before killpg."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # old kernel: fall back to a reaping wait
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        poller = select.poll()  # not select.select: a busy parent may hold fds above 1024
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(timeout_s, 0.0) * 1000))
    finally:
        os.close(fd)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _classify(rc: int, timed_out: bool, stderr: str, marker: str) -> str:
    if rc == child.RC_BLOCKED or marker in stderr:
        return "blocked"
    if timed_out or rc == -signal.SIGXCPU:
        return "timeout"
    if rc == 0:
        return "passed"
    # -SIGKILL we did not send is the kernel OOM killer; the rest is Python running out.
    if rc in (child.RC_MEMORY, -signal.SIGKILL) or "MemoryError" in stderr[-_STDERR_TAIL:]:
        return "memory"
    return "error" if rc == child.RC_BOOT_ERROR else "failed"


def _tail(stderr: str, status: str) -> str:
    tail = stderr[-_STDERR_TAIL:]
    if status == "blocked" and _BLOCKED_MARKER not in tail:  # keep the reason visible
        line = next((ln for ln in stderr.splitlines() if _BLOCKED_MARKER in ln), "")[:500]
        tail = line + "\n...\n" + tail[len(line) + 5 :]
    return tail


def _force_remove(func: Any, path: str, _exc: Any) -> None:
    # The program may have chmod-ed its own files; make them removable and retry once.
    try:
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        func(path)
    except OSError:
        pass


