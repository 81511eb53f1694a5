"""The child side of `synthmix.sandbox`: the bootstrap that runs (precompiled) as
``python -I -S -B boot.pyc ROLE SPEC``, inside the jail or under the guard.

Roles: ``program`` (run_python: leave the network, exec ``guarded-program``, which runs the whole
program under the guard), ``runner`` (check_function's trusted test runner, A) and ``worker``
(the untrusted solution, B, started by A). It imports only what the interpreter has loaded at
start (os, sys, marshal, signal): every interpreter start is on pass@1's critical path.
Messages between processes are length-prefixed `marshal` data, which can only encode plain
built-in values; the runner checks every value it receives with `plain` all the same.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
from typing import Any

RC_BLOCKED = 86  # exit codes the parent maps to a status
RC_MEMORY = 87
RC_BOOT_ERROR = 88
FSIZE_BYTES = 16 * 2**20  # per file (and the stderr file)
MAX_CREATED_FILES = 64  # files a program may create: with FSIZE, <= 1 GiB of disk on the guard path
MAX_MESSAGE = 64 * 2**20

_DENY_PREFIXES = (
    "socket.", "ctypes.", "subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn",
    "os.fork", "os.forkpty", "pty.", "resource.setrlimit", "resource.prlimit", "os.startfile",
    "webbrowser.",
)
_DENY_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
# Modules that reach raw memory (ctypes' memmove/memset raise no audit event) or the interpreter's
# insides: importing them is refused. (An extension module loaded once stays cached in its
# process, so nothing that runs the program may have loaded ctypes before the hook.)
_DENY_MODULES = frozenset({"ctypes", "_ctypes", "_testcapi", "_testinternalcapi", "_testbuffer", "_testmultiphase",
                           "_testsinglephase", "_xxsubinterpreters", "_xxinterpchannels", "_ctypes_test"})
# event -> ((path arg index, dir_fd arg index or None), ...) of paths that get modified.
_PATH_EVENTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.mkdir": ((0, 2),), "os.remove": ((0, 1),), "os.rmdir": ((0, 1),),
    "os.rename": ((0, 2), (1, 3)), "os.link": ((0, 2), (1, 3)), "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),), "os.chmod": ((0, 2),), "os.chown": ((0, 3),),
    "os.chflags": ((0, None),), "os.utime": ((0, 3),), "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),), "shutil.rmtree": ((0, 1),), "sqlite3.connect": ((0, None),),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_READABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (tuple, list, set, frozenset)


# ----------------------------------------------------------------------------- values


def plain(value: Any, depth: int = 0) -> bool:
    """Whether `value` is made only of plain built-in values (exact types, no subclasses)."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if depth > 200:
        return False
    if kind in _CONTAINERS:
        return all(plain(v, depth + 1) for v in value)
    if kind is dict:
        return all(plain(k, depth + 1) and plain(v, depth + 1) for k, v in value.items())
    return False


def same(a: Any, b: Any) -> bool:
    """Equal in type and value, all the way down (strict tests: ``f(x) == 1`` fails for 1.0 or True)."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def send(fd: int, message: Any) -> None:
    data = marshal.dumps(message)
    data = len(data).to_bytes(8, "little") + data
    while data:
        data = data[os.write(fd, data) :]


def receive(fd: int) -> Any:
    """The next message, or EOFError when the other side is gone (or sent garbage: ValueError)."""
    size = int.from_bytes(_read_exactly(fd, 8), "little")
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes")
    return marshal.loads(_read_exactly(fd, size))


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ----------------------------------------------------------------------------- the guard


class SandboxViolation(BaseException):
    """Raised inside the child when the program does something the sandbox refuses."""


class Guard:
    """The audit hook: refuse network, processes, ctypes, /proc, writes outside `root`, reads outside `readable`."""

    def __init__(self, root: str, marker: str, readable: list[str]) -> None:
        self.root = os.path.realpath(root)
        self.readable = [os.path.realpath(p) for p in readable if p]
        self.marker = marker
        self.violated = False
        self.created = 0

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event.startswith(_DENY_PREFIXES) or event in _DENY_EVENTS:
            self.deny(event, args)
        elif event == "import" and str(args[0]).split(".")[0] in _DENY_MODULES:
            self.deny(event, args)
        elif event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            writing = (flags or 0) & _WRITE_FLAGS or (isinstance(mode, str) and any(c in mode for c in "wax+"))
            real = self._real(path, None)
            if real == "/proc" or real.startswith("/proc/"):
                self.deny(event, args)
            elif writing and not self._under(real, [self.root]):
                self.deny(event, args)
            elif writing and not os.path.exists(real):
                self.created += 1
                if self.created > MAX_CREATED_FILES:
                    self.deny(event, args)
            elif not writing and not (real in _READABLE_DEVICES or self._under(real, [self.root, *self.readable])):
                self.deny(event, args)
        elif event in _PATH_EVENTS:
            for p, d in _PATH_EVENTS[event]:
                if p < len(args):
                    real = self._real(args[p], args[d] if d is not None and d < len(args) else None)
                    if real != "/dev/null" and not self._under(real, [self.root]):
                        self.deny(event, args)
        elif event in ("os.kill", "os.killpg") and args[0] != os.getpid():
            self.deny(event, args)

    @staticmethod
    def _real(path: Any, dir_fd: Any) -> str:
        if path is None or path == ":memory:" or path == "":
            return os.getcwd()
        if isinstance(path, int):  # an fd: judge the file it refers to
            path = os.readlink(f"/proc/self/fd/{path}")
        path = os.fsdecode(os.fspath(path))
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        return os.path.realpath(path)

    @staticmethod
    def _under(real: str, roots: list[str]) -> bool:
        return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

    def deny(self, event: str, args: Any) -> None:
        """Record the violation, say so on stderr (os.write: no audit event) and raise."""
        self.violated = True
        os.write(2, f"{self.marker} {event} {args!r:.300}\n".encode("utf-8", "replace"))
        raise SandboxViolation(f"sandbox refused {event}")


def unshare_network() -> None:
    """Leave the network (a new namespace; works as root, silently skipped otherwise). Only in a
    process that then starts or execs the program's interpreter: this one has loaded ctypes."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).unshare(0x40000000)  # CLONE_NEWNET
    except Exception:
        pass


def not_dumpable() -> None:
    """No /proc/<pid>/mem, no ptrace of this process by the worker (PR_SET_DUMPABLE = 0)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    except Exception:
        pass


def set_limits(spec: dict[str, Any], processes: bool = True) -> None:
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
    cap(resource.RLIMIT_FSIZE, FSIZE_BYTES)
    cap(resource.RLIMIT_CORE, 0)
    if processes and os.getuid() != 0:  # counts all the user's tasks (threads too); root is exempt anyway
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


def _print_exc() -> None:
    import traceback

    traceback.print_exc()


def guarded(spec: dict[str, Any]) -> tuple[Guard, Any]:
    """Limits and audit hook around the program; (the guard, the compiled program or None)."""
    with open(spec["candidate"], encoding="utf-8") as f:
        source = f.read()
    readable = [spec["candidate"], spec["boot"], *sys.path, os.path.dirname(os.__file__)]
    try:
        code = compile(source, "candidate.py", "exec")
    except (SyntaxError, ValueError):
        _print_exc()
        code = None
    set_limits(spec)
    guard = Guard(spec["workdir"], spec["marker"], readable)

    def refused(name: str) -> Any:
        return lambda *a, **k: guard.deny(name, a)

    import _posixsubprocess

    _posixsubprocess.fork_exec = refused("_posixsubprocess.fork_exec")  # type: ignore[attr-defined]
    signal.pidfd_send_signal = refused("signal.pidfd_send_signal")  # type: ignore[assignment]
    sys.addaudithook(guard)
    sys.argv = ["candidate.py"]
    return guard, code


def _main_module() -> dict[str, Any]:
    main = type(sys)("__main__")  # a real __main__, so doctest.testmod()/pickle see it
    sys.modules["__main__"] = main
    return main.__dict__


def _finish(guard: Guard, rc: int, report: Any = None) -> None:
    try:
        if report is not None:
            report()
        sys.stderr.flush()
    finally:
        os._exit(RC_BLOCKED if guard.violated else rc)


# ----------------------------------------------------------------------------- roles


def program_main(spec: dict[str, Any]) -> None:
    """run_python's child: leave the network, then exec a fresh interpreter (that never loaded
    ctypes) for the program."""
    unshare_network()
    os.execv(spec["python"], [spec["python"], "-I", "-S", "-B", spec["boot"], "guarded-program", sys.argv[2]])


def guarded_program_main(spec: dict[str, Any]) -> None:
    """The whole program under the guard; its exit status is the result."""
    guard, code = guarded(spec)
    if code is None:
        sys.exit(1)
    scope = _main_module()
    try:
        exec(code, scope)
    except MemoryError:
        scope.clear()  # free the program's data so the report itself can allocate
        _finish(guard, RC_MEMORY, _print_exc)
    except BaseException:
        if guard.violated:
            _finish(guard, RC_BLOCKED, _print_exc)
        raise  # SystemExit keeps its code; anything else prints a traceback, exit 1
    if guard.violated:  # the program caught the violation and carried on
        _finish(guard, RC_BLOCKED)


def worker_main(spec: dict[str, Any]) -> None:
    """The worker (B): load the solution under the guard, then answer the runner's calls.

    Messages travel on private copies of fds 0 and 1; the program's own stdin and stdout are
    /dev/null. A call that ends the process (any kind of exit) leaves the runner without an
    answer: the test fails."""
    rpc_in, rpc_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    guard, code = guarded(spec)
    scope = _main_module()
    try:
        if code is None:
            raise SyntaxError("the solution does not compile (traceback above)")
        exec(code, scope)
    except MemoryError:
        scope.clear()
        _finish(guard, RC_MEMORY, _print_exc)
    except BaseException:
        _finish(guard, 1, _print_exc)
    if guard.violated:
        _finish(guard, RC_BLOCKED)
    send(rpc_out, ("loaded",))
    while True:
        try:
            request = receive(rpc_in)
        except (EOFError, ValueError):
            break
        if request == ("finish",):
            send(rpc_out, ("clean", not guard.violated))
            break
        try:
            name, args, kwargs = request
            if type(args) is bytes:  # arguments that are not plain values come pickled, from the runner
                import pickle

                args, kwargs = pickle.loads(args)
            result = scope[name](*args, **kwargs)
        except MemoryError:
            scope.clear()
            _finish(guard, RC_MEMORY, _print_exc)
        except BaseException as exc:  # SystemExit included: a function that exits never returned
            if guard.violated:
                _finish(guard, RC_BLOCKED, _print_exc)
            message: tuple[Any, ...] = ("raised", type(exc).__name__, str(exc)[:500])
        else:
            try:
                message = ("value", result)
                marshal.dumps(message)
            except (ValueError, TypeError):
                message = ("unencodable", f"{type(result).__module__}.{type(result).__qualname__}")
        if guard.violated:  # the program caught the violation and carried on
            _finish(guard, RC_BLOCKED)
        send(rpc_out, message)
    sys.stderr.flush()
    os._exit(RC_BLOCKED if guard.violated else 0)


class _WorkerGone(Exception):
    """The worker broke the protocol in the middle of a call."""


def runner_main(spec: dict[str, Any]) -> None:
    """The runner (A): trusted code only. Start the worker, run the tests with the entry point
    calling into it, and write the one result (with the nonce) after the last test."""
    import builtins

    result_fd = os.dup(1)
    os.dup2(2, 1)  # the tests' prints go to stderr; `result_fd` carries only the result
    payload = receive(0)
    nonce, entry = payload["nonce"], payload["entry_point"]
    set_limits(spec, processes=False)
    unshare_network()  # the worker inherits the namespace (and never loads ctypes itself)
    not_dumpable()

    def report(status: str, detail: str) -> None:
        send(result_fd, {"nonce": nonce, "status": status, "detail": detail[:1000]})
        sys.stderr.flush()
        os._exit(0)

    to_worker_r, to_worker_w = os.pipe()
    from_worker_r, from_worker_w = os.pipe()
    pid = os.fork()  # this process has no threads: fork is safe, and cheaper than subprocess
    if pid == 0:
        try:
            os.dup2(to_worker_r, 0)
            os.dup2(from_worker_w, 1)
            os.closerange(3, 1 << 16)
            os.execv(spec["python"], [spec["python"], "-I", "-S", "-B", spec["boot"], "worker", sys.argv[2]])
        finally:
            os._exit(RC_BOOT_ERROR)
    os.close(to_worker_r)
    os.close(from_worker_w)
    calls = 0

    def worker_ended(during: str) -> None:
        _, status = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        if rc == RC_BLOCKED:
            report("blocked", f"the sandbox refused what the program did {during}")
        if rc == RC_MEMORY:
            report("memory", f"the program ran out of memory {during}")
        if rc == -signal.SIGXCPU:
            report("timeout", f"the program hit its CPU limit {during}")
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        report("failed", f"the program {how} {during}: a test that does not run to its end fails")

    def ask(message: Any, during: str) -> Any:
        try:
            if message is not None:
                send(to_worker_w, message)
            answer = receive(from_worker_r)
        except (BrokenPipeError, EOFError, OSError):
            worker_ended(during)
        except ValueError:
            raise _WorkerGone(f"the program broke the protocol {during}") from None
        if type(answer) is not tuple or not answer or not plain(answer):
            raise _WorkerGone(f"the program broke the protocol {during}")
        return answer

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        during = f"in call {calls} of {entry}"
        if plain(args) and plain(kwargs):
            answer = ask((entry, args, kwargs), during)
        else:  # e.g. MBPP's Pair objects: pickled (the worker's __main__ defines the same classes)
            import pickle

            answer = ask((entry, pickle.dumps((args, kwargs)), None), during)
        if answer[0] == "value" and len(answer) == 2:
            return answer[1]
        if answer[0] == "unencodable" and len(answer) == 2:
            raise AssertionError(f"{entry} returned a {answer[1]}, not a plain built-in value")
        if answer[0] == "raised" and len(answer) == 3:
            name, text = str(answer[1]), str(answer[2])
            kind = getattr(builtins, name, None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError  # SystemExit and friends, or the program's own class
            raise kind(f"{name} in {entry}: {text}")
        raise _WorkerGone(f"the program broke the protocol {during}")

    if ask(None, "while loading the solution") != ("loaded",):
        report("failed", "the program broke the protocol while loading")
    tests_module = type(sys)("__main__")  # classes the context defines pickle as __main__.<name>,
    sys.modules["__main__"] = tests_module  # which the worker's __main__ (the solution) defines too
    namespace = tests_module.__dict__
    namespace["__synthmix_same__"] = same
    try:
        if payload["context"] is not None:
            exec(payload["context"], namespace)
    except Exception as exc:
        report("error", f"the trusted context does not run: {type(exc).__name__}: {exc}")
    namespace[entry] = call
    try:
        exec(payload["tests"], namespace)
    except _WorkerGone as exc:
        report("failed", str(exc))
    except MemoryError:
        report("memory", "the test runner ran out of memory")
    except BaseException as exc:
        report("failed", f"{type(exc).__name__}: {str(exc)[:300]} (after {calls} call(s))")
    if ask(("finish",), "at the end of the tests") != ("clean", True):
        worker_ended("at the end of the tests")
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        worker_ended("at the end of the tests")
    report("passed", f"every test ran to its end ({calls} call(s))")


ROLES = {"program": program_main, "guarded-program": guarded_program_main, "runner": runner_main,
         "worker": worker_main}

if __name__ == "__main__":
    try:
        _role, _spec = sys.argv[1], marshal.loads(bytes.fromhex(sys.argv[2]))
        _main = ROLES[_role]
    except (IndexError, ValueError, KeyError, EOFError, TypeError):
        sys.stderr.write("sandbox bootstrap: bad arguments\n")
        sys.exit(RC_BOOT_ERROR)
    _main(_spec)
