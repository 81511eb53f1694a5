"""Run untrusted, model-written Python in a separate, limited process.

``run_python(source)`` writes the program to a throw-away temporary directory and runs
``sys.executable -I -B <this file> <spec>`` in a fresh session (its own process group).
This file, run as a script, is the *bootstrap*: before the candidate's first line runs it

* unshares the network namespace (``unshare(CLONE_NEWNET)`` via ctypes; works as root,
  silently skipped otherwise), so even code that slips past the hook sees no network;
* sets rlimits: address space (``memory_mb``), CPU seconds (timeout + 1), file size
  (32 MiB, which also caps stderr), no core files, and (for non-root users only; the
  kernel ignores it for root) a process count that leaves no room to fork (nor to start
  threads, which count too);
* installs a ``sys.addaudithook`` hook that refuses: every ``socket.*`` event; opening a
  path for writing, creating/removing/renaming/chmod-ing a path, outside the candidate's
  working directory (paths resolved with ``realpath``, ``dir_fd`` arguments through
  ``/proc/self/fd``); ``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.spawn*``,
  ``os.posix_spawn``, ``os.fork``/``forkpty``; every ``ctypes.*`` event (loading a
  library, calling a foreign function, raw memory access - ``import ctypes`` itself works);
  ``os.kill``/``killpg`` of any process but itself; ``resource.setrlimit``/``prlimit``;
  ``sqlite3.connect`` outside its directory. ``_posixsubprocess.fork_exec`` and
  ``signal.pidfd_send_signal``, which raise no audit event, are replaced by refusals.
  A refusal prints a marker with a per-run nonce to stderr and raises ``SandboxViolation``
  (a ``BaseException``, so ``except Exception`` does not swallow it); the bootstrap then
  exits with a distinctive code, and the parent reports ``"blocked"`` even if the program
  caught the exception and finished;
* runs with a minimal environment (no secrets inherited; ``HOME``/``TMPDIR`` = its cwd).

Rlimits and the namespace are set by the bootstrap rather than a ``preexec_fn`` because
``preexec_fn`` is not safe in a multi-threaded parent (torch keeps threads around).
The parent kills the whole process group on the wall-clock limit and after every run,
keeps stdout in ``/dev/null`` and stderr in a size-capped file (a chatty program cannot
fill its memory), and always removes the temporary directory.

What this does NOT protect against (it is defence in depth for *model-written* code, not
a jail against an adversary): audit hooks are a CPython convenience, not a security
boundary - code that deliberately tampers with the interpreter (``gc``/frame tricks to
reach the hook's state, re-creating extension modules, TOCTOU races with symlinks or
``os.open(..., dir_fd=)`` whose audit event does not carry the ``dir_fd``) can get past
it. Reading any file the user can read is allowed (there is no network to send it to
when the unshare worked, but as non-root the hook is the only network barrier). There is
no seccomp, chroot, user or PID namespace; as root RLIMIT_NPROC is not enforced, and the
child still runs as the parent's user. CPU time and memory are per process; disk use is
bounded per file, not in total. Run truly hostile code in a container or VM.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

_RC_BLOCKED = 86  # bootstrap exit codes the parent maps to a status
_RC_MEMORY = 87
_RC_BOOT_ERROR = 88
_STDERR_TAIL = 2000
_FSIZE_BYTES = 32 * 2**20
_BLOCKED_MARKER = "SANDBOX-BLOCKED"


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run."""

    status: str  # "passed" | "failed" | "timeout" | "memory" | "blocked" | "error"
    returncode: int | None
    stderr: str  # last ~2000 chars
    duration_s: float

    @property
    def passed(self) -> bool:
        """True iff the program exited 0 and nothing was blocked."""
        return self.status == "passed"


def run_python(source: str, timeout_s: float = 3.0, memory_mb: int = 256) -> SandboxResult:
    """Run `source` as a Python program in a limited child process and classify the outcome."""
    start = time.monotonic()
    root: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        root = tempfile.mkdtemp(prefix="synthmix-sandbox-")
        work = os.path.join(root, "work")
        os.mkdir(work)
        spec = {
            "candidate": os.path.join(root, "candidate.py"),
            "workdir": work,
            "nonce": os.urandom(8).hex(),  # the program cannot fake a block marker
            "memory_bytes": int(memory_mb) * 2**20,
            "cpu_s": math.ceil(timeout_s) + 1,
        }
        with open(spec["candidate"], "w", encoding="utf-8") as f:
            f.write(source)
        err_path = os.path.join(root, "stderr.txt")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", os.path.abspath(__file__), json.dumps(spec)],
                cwd=work, env=_child_env(work), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, close_fds=True,
            )
        timed_out = not _wait_unreaped(proc, timeout_s)
        _kill_group(proc)  # hung program, or anything it left behind in its group
        proc.wait()
        with open(err_path, "rb") as f:
            stderr = f.read().decode("utf-8", errors="replace")
        status = _classify(proc.returncode, timed_out, stderr, f"{_BLOCKED_MARKER}[{spec['nonce']}]")
        return SandboxResult(status, proc.returncode, _tail(stderr, status), time.monotonic() - start)
    except (OSError, ValueError) as exc:  # could not even start (or read back) the child
        return SandboxResult("error", None, f"sandbox error: {exc!r}", time.monotonic() - start)
    finally:
        if proc is not None and proc.returncode is None:  # e.g. KeyboardInterrupt in wait
            _kill_group(proc)
            proc.wait()
        if root is not None:
            shutil.rmtree(root, onerror=_force_remove)


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
    if rc == _RC_BLOCKED or marker in stderr:
        return "blocked"
    if timed_out or rc == -signal.SIGXCPU:
        return "timeout"
    if rc == 0:
        return "passed"
    # -SIGKILL we did not send is the kernel OOM killer; the rest is Python running out.
    if rc in (_RC_MEMORY, -signal.SIGKILL) or "MemoryError" in stderr[-_STDERR_TAIL:]:
        return "memory"
    return "error" if rc == _RC_BOOT_ERROR else "failed"


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


# ----------------------------------------------------------------------------- child side


class SandboxViolation(BaseException):
    """Raised inside the child when the program does something the sandbox refuses."""


_DENY_PREFIXES = (
    "socket.", "ctypes.", "subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn",
    "os.fork", "os.forkpty", "pty.", "resource.setrlimit", "resource.prlimit", "os.startfile",
    "webbrowser.",
)
# event -> ((path arg index, dir_fd arg index or None), ...) of paths that get modified.
_PATH_EVENTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.mkdir": ((0, 2),), "os.remove": ((0, 1),), "os.rmdir": ((0, 1),),
    "os.rename": ((0, 2), (1, 3)), "os.link": ((0, 2), (1, 3)), "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),), "os.chmod": ((0, 2),), "os.chown": ((0, 3),),
    "os.chflags": ((0, None),), "os.utime": ((0, 3),), "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),), "shutil.rmtree": ((0, 1),), "sqlite3.connect": ((0, None),),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _Guard:
    """The audit hook: refuse network, process creation and writes outside `root`."""

    def __init__(self, root: str, marker: str) -> None:
        self.root = os.path.realpath(root)
        self.marker = marker
        self.violated = False

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event.startswith(_DENY_PREFIXES):
            self.deny(event, args)
        elif event == "open":
            path, mode, flags = args
            writing = (flags or 0) & _WRITE_FLAGS or (isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writing and not isinstance(path, int) and not self._inside(path, None):
                self.deny(event, args)
        elif event in _PATH_EVENTS:
            for p, d in _PATH_EVENTS[event]:
                if p < len(args) and not self._inside(args[p], args[d] if d is not None and d < len(args) else None):
                    self.deny(event, args)
        elif event in ("os.kill", "os.killpg") and args[0] != os.getpid():
            self.deny(event, args)

    def _inside(self, path: Any, dir_fd: Any) -> bool:
        if path is None or path == ":memory:" or path == "":
            return True
        if isinstance(path, int):  # an fd: judge the file it refers to
            path = os.readlink(f"/proc/self/fd/{path}")
        path = os.fsdecode(os.fspath(path))
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        real = os.path.realpath(path)
        return real == "/dev/null" or real == self.root or real.startswith(self.root + os.sep)

    def deny(self, event: str, args: Any) -> None:
        """Record the violation, say so on stderr (os.write: no audit event) and raise."""
        self.violated = True
        os.write(2, f"{self.marker} {event} {args!r:.300}\n".encode("utf-8", "replace"))
        raise SandboxViolation(f"sandbox refused {event}")


def _unshare_network() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).unshare(0x40000000)  # CLONE_NEWNET; fails if not root
    except Exception:
        pass
    # ctypes stays imported (numpy imports it), but every use - dlopen, dlsym, foreign calls,
    # raw memory access - raises a `ctypes.*` audit event, which the hook refuses.


def _set_limits(spec: dict[str, Any]) -> None:
    import resource

    def cap(which: int, soft: int, hard: int | None = None) -> None:
        hard = soft if hard is None else hard
        current = resource.getrlimit(which)[1]
        if current != resource.RLIM_INFINITY:  # only root may raise a hard limit
            soft, hard = min(soft, current), min(hard, current)
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            pass

    cap(resource.RLIMIT_AS, spec["memory_bytes"])
    # SIGXCPU at the soft limit; the hard limit a second later kills a program that ignores it
    cap(resource.RLIMIT_CPU, spec["cpu_s"], spec["cpu_s"] + 1)
    cap(resource.RLIMIT_FSIZE, _FSIZE_BYTES)
    cap(resource.RLIMIT_CORE, 0)
    if os.getuid() != 0:  # counts all the user's tasks (threads too); root is exempt anyway
        cap(resource.RLIMIT_NPROC, _user_task_count())


def _user_task_count() -> int:
    uid, n = os.getuid(), 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return max(n, 1)


def _child_main(spec: dict[str, Any]) -> None:
    import traceback
    import types

    _unshare_network()
    with open(spec["candidate"], encoding="utf-8") as f:
        source = f.read()
    try:
        code = compile(source, "candidate.py", "exec")
    except (SyntaxError, ValueError):
        traceback.print_exc()
        sys.exit(1)
    _set_limits(spec)
    guard = _Guard(spec["workdir"], f"{_BLOCKED_MARKER}[{spec['nonce']}]")

    def refused(name: str) -> Any:
        return lambda *a, **k: guard.deny(name, a)

    import _posixsubprocess

    _posixsubprocess.fork_exec = refused("_posixsubprocess.fork_exec")  # type: ignore[attr-defined]
    signal.pidfd_send_signal = refused("signal.pidfd_send_signal")  # type: ignore[assignment]
    sys.addaudithook(guard)
    sys.argv = ["candidate.py"]
    main = types.ModuleType("__main__")  # a real __main__, so doctest.testmod()/pickle see it
    sys.modules["__main__"] = main
    scope = main.__dict__
    try:
        exec(code, scope)
    except MemoryError:
        scope.clear()  # free the program's data so the report itself can allocate
        _finish(guard, _RC_MEMORY, traceback.print_exc)
    except BaseException:
        if guard.violated:
            _finish(guard, _RC_BLOCKED, traceback.print_exc)
        raise  # SystemExit keeps its code; anything else prints a traceback, exit 1
    if guard.violated:  # the program caught the violation and carried on
        _finish(guard, _RC_BLOCKED, lambda: None)


def _finish(guard: _Guard, rc: int, report: Any) -> None:
    try:
        report()
        sys.stderr.flush()
    finally:
        os._exit(_RC_BLOCKED if guard.violated else rc)


if __name__ == "__main__":
    try:
        _spec = json.loads(sys.argv[1])
    except (IndexError, ValueError):
        sys.stderr.write("sandbox bootstrap: bad spec\n")
        sys.exit(_RC_BOOT_ERROR)
    _child_main(_spec)
