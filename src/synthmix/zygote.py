"""A warm start for the heavy verbs: one process imports torch, transformers and great-expectations
once, and forks a ready child for each `synthmix train`, `evaluate`, `generate`, ... that follows.

Why: those imports cost 6-10 s of CPU per stage on this 2-core machine, and a study runs ~20 heavy
stages (the test suite ~110): more time than many of the stages' own work. The same idea as
Android's zygote or nailgun for the JVM.

How it behaves, so a stage cannot tell the difference:
- `synthmix <heavy verb>` (the console script, `cli.entry`) connects to the zygote of its
  *environment*. When there is none, it starts one in the background and runs its own verb itself
  (the zygote's imports, every heavy verb's at once, take ~12 s: longer than one verb's). The key of that environment is a hash of the
  interpreter, synthmix's source files (mtime and size: an edit starts a fresh zygote), every
  environment variable (less a few that differ per call and are read at run time only: `DVC_*`,
  `PYTEST_*`, `PWD`, ...), the CPU affinity, the resource limits, the umask and the cgroup. A
  library that reads a variable at import therefore never sees a stale one.
- The request carries the argv, the working directory, the full environment and the caller's own
  stdin, stdout and stderr (passed as file descriptors), so the child writes where the caller
  would have, and its tty checks see the caller's terminal.
- Each request gets a supervisor, forked from the zygote, which forks the child in a process group
  of its own. The caller forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to that group, and exits
  with the child's status (a child killed by a signal kills the caller with the same signal).
  When the caller dies (SIGKILL included) the supervisor sees its socket close and SIGKILLs the
  group at once: a killed stage leaves nothing running, as without the zygote.
- Anything that goes wrong before the child starts (no socket directory, a zygote that cannot
  import, a full disk) falls back to running the verb in the calling process: slower, never lost.
- The zygote serves only its own user (the socket's directory is 0700, and each peer's uid is
  checked) and exits after `SYNTHMIX_ZYGOTE_IDLE` seconds without a request (default 300; a
  verb that runs in its caller because the zygote was still importing keeps it from exiting while
  it runs, and counts as a request when it ends).
  `SYNTHMIX_ZYGOTE=0` turns it off. Its log is beside its socket.

The zygote itself never runs a tensor operation (OpenMP's thread pool does not survive a fork, see
workers.py), so each child sets up torch's threads exactly as a fresh process does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

#: the verbs worth a warm start (the rest start in ~0.2 s: they import no torch)
HEAVY = frozenset({"prepare", "pretrain", "tokenizer", "generate", "validate", "train", "evaluate"})
#: environment variables that differ from call to call (DVC's per-stage ones, pytest's per-test ones,
#: pyenv's shims nesting PATH, git identities of a script) and that no preloaded import reads: the
#: child gets them all the same, in the caller's full environment
VOLATILE_PREFIXES = ("DVC_", "PYTEST_", "SYNTHMIX_ZYGOTE", "PYENV_", "GIT_", "SSH_")
VOLATILE = frozenset({"PATH", "PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES", "TERM_SESSION_ID"})
#: what the zygote imports before it serves (each verb's module, and what they import lazily)
PRELOAD = (
    "torch", "transformers", "accelerate", "accelerate.utils", "datasets", "pandas", "datasketch",
    "jinja2.sandbox", "great_expectations", "great_expectations.expectations",
    "great_expectations.data_context.types.base",
    "synthmix.prepare", "synthmix.pretrain", "synthmix.tokenizer", "synthmix.generate",
    "synthmix.validation", "synthmix.train", "synthmix.evaluation", "synthmix.quality",
)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def enabled(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("SYNTHMIX_ZYGOTE", "1").strip().lower() not in ("0", "off", "false", "no")


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return Path(base) / f"synthmix-zygote-{os.getuid()}"


def _sources() -> list[tuple[str, int, int]]:
    package = Path(__file__).resolve().parent
    files = []
    for path in sorted(package.rglob("*.py")):
        st = path.stat()
        files.append((str(path.relative_to(package)), st.st_mtime_ns, st.st_size))
    return files


def _cgroup() -> str:
    try:
        return Path("/proc/self/cgroup").read_text()
    except OSError:
        return ""


def key(environ: dict[str, str] | None = None) -> str:
    """The hash of everything a forked child inherits from its zygote rather than from its caller."""
    return hashlib.sha256(json.dumps(_state(environ), sort_keys=True, default=str).encode()).hexdigest()[:20]


def _state(environ: dict[str, str] | None = None) -> dict:
    """What `key` hashes; written beside each zygote's log (<key>.json), to see why two differ."""
    import resource

    env = dict(os.environ if environ is None else environ)
    kept = {k: v for k, v in env.items() if k not in VOLATILE and not k.startswith(VOLATILE_PREFIXES)}
    umask = os.umask(0)
    os.umask(umask)
    limits = {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource)
              if name.startswith("RLIMIT_")}
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    state = {
        "python": [sys.executable, sys.version, sys.path], "sources": [str(Path(__file__).parent), _sources()],
        "env": sorted(kept.items()), "affinity": affinity, "limits": limits, "umask": umask,
        "cgroup": _cgroup(), "nice": os.nice(0),
    }
    return state


# ---- wire format: a 4-byte length, then JSON ------------------------------------------------------

def _send(sock: socket.socket, obj: object, fds: list[int] | None = None) -> None:
    data = json.dumps(obj).encode()
    frame = struct.pack("!I", len(data)) + data
    if fds:
        socket.send_fds(sock, [frame], fds)
    else:
        sock.sendall(frame)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise EOFError("the zygote closed the connection")
        chunks += chunk
    return chunks


def _recv(sock: socket.socket) -> object:
    return json.loads(_recv_exact(sock, struct.unpack("!I", _recv_exact(sock, 4))[0]))


# ---- the caller's side ------------------------------------------------------------------------------

def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        return sock
    except OSError:
        sock.close()
        return None


def _start_server(directory: Path, name: str) -> None:
    import subprocess

    (directory / f"{name}.json").write_text(json.dumps(_state(), indent=1, sort_keys=True, default=str))
    log = open(directory / f"{name}.log", "ab")
    try:
        # from /, so no caller's directory is on its import path (each child gets the caller's path)
        subprocess.Popen(
            [sys.executable, "-c", "import sys; from synthmix.zygote import serve; "
             "from pathlib import Path; sys.exit(serve(Path(sys.argv[1]), sys.argv[2]))", str(directory), name],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True, cwd="/",
        )
    finally:
        log.close()


def _connect_or_start(directory: Path, name: str) -> socket.socket | None:
    """A connection to this key's zygote, or None after starting one in the background.

    The caller that finds none does not wait for it (its imports take longer than a single verb's):
    it runs its verb itself, and the calls after it find the zygote warm."""
    sock = _connect(directory / f"{name}.sock")
    if sock is None and not (directory / f"{name}.failed").exists():
        _start_server(directory, name)  # exits at once when another caller's is already starting
    return sock


@contextlib.contextmanager
def running_here(name: str) -> Iterator[None]:
    """A heavy verb running in its caller, not in the zygote (which was still importing when the verb
    started). While it runs, a mark `<name>.busy.<pid>` in the runtime directory keeps the zygote
    from idling out: a first stage longer than the idle exit (train: minutes; the exit defaults to
    5) would otherwise find it gone, and the next stage would start cold. When the verb ends, the
    mark goes and `ping` restarts the idle clock."""
    mark: Path | None = runtime_dir() / f"{name}.busy.{os.getpid()}"
    try:
        mark.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        mark.touch()
    except OSError:
        mark = None
    try:
        yield
    finally:
        if mark is not None:
            mark.unlink(missing_ok=True)
        ping(name)


def _busy(directory: Path, name: str) -> bool:
    """Whether a verb of this key runs in its caller (`running_here`); marks of callers that are
    gone (killed before they could remove theirs) are removed."""
    busy = False
    for mark in directory.glob(f"{name}.busy.*"):
        try:
            os.kill(int(mark.name.rsplit(".", 1)[1]), 0)
            busy = True
        except PermissionError:
            busy = True
        except (ValueError, ProcessLookupError):
            mark.unlink(missing_ok=True)
    return busy


def ping(name: str) -> None:
    """Tell this environment's zygote, if one serves, that a heavy verb just ran here in-process
    (it was still importing when the verb started): its idle clock restarts now, not at the verb's
    start, so a long first stage (train: minutes) does not outlast the zygote's wait for the next."""
    try:
        sock = _connect(runtime_dir() / f"{name}.sock")
        if sock is not None:
            with sock:
                _send(sock, {"ping": True})
    except OSError:
        pass


def call(argv: list[str], name: str) -> int | None:
    """Run `synthmix <argv>` in a child of the warm zygote of key `name`; its exit status, or None
    when no zygote could take the call (the caller then runs the verb itself)."""
    try:
        directory = runtime_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_uid != os.getuid() or directory.stat().st_mode & 0o077:
            return None  # not ours alone: never hand our argv and environment to it
        sock = _connect_or_start(directory, name)
        if sock is None:
            return None
        fds = []
        for fd in (0, 1, 2):
            try:
                os.fstat(fd)
                fds.append(fd)
            except OSError:
                fds.append(-1)
        valid = [fd for fd in fds if fd >= 0]
        affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        # a signal the caller ignores (SIGINT in a background job) stays ignored in the child
        ignored = [int(s) for s in FORWARDED if signal.getsignal(s) == signal.SIG_IGN]
        _send(sock, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "fds": fds,
                     "affinity": affinity, "path": sys.path, "ignored": ignored}, valid)
        reply = _recv(sock)
    except (OSError, EOFError, ValueError):
        return None
    if not isinstance(reply, dict) or "pid" not in reply:
        return None
    return _wait(sock, int(reply["pid"]), ignored)


def _wait(sock: socket.socket, group: int, ignored: list[int]) -> int:
    """Relay signals to the child's group until the supervisor reports the child's status."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(group, signum)
        except OSError:
            pass

    relayed = [s for s in FORWARDED if int(s) not in ignored]
    for signum in relayed:
        signal.signal(signum, forward)
    try:
        status = _recv(sock)
    except (OSError, EOFError, ValueError):
        print("synthmix: the warm-start supervisor died before the stage ended", file=sys.stderr)
        return 1
    finally:
        for signum in relayed:
            signal.signal(signum, signal.SIG_DFL)
    if isinstance(status, dict) and status.get("signal"):
        signum = int(status["signal"])
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signum)  # die as the child died (SIGKILL, SIGSEGV, ...)
        return 128 + signum
    return int(status.get("exit", 1)) if isinstance(status, dict) else 1


# ---- the zygote's side -------------------------------------------------------------------------------

def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}", file=sys.stderr, flush=True)


def _preload() -> None:
    import importlib

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # as validation.py sets it, before gx
    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except ImportError as err:  # an optional extra: the child imports it (or fails) as usual
            _log(f"preload {module}: {err}")


def _child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the caller's process (fds, cwd, environment, argv), run the verb."""
    import atexit
    import ctypes
    import io
    import tempfile

    os.setpgid(0, 0)
    try:  # die with the supervisor, whatever kills it
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    ignored = set(request.get("ignored", ()))
    for signum in FORWARDED:  # as a fresh interpreter of the caller's would have them
        default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, signal.SIG_IGN if int(signum) in ignored else default)
    received = iter(fds)
    for target, fd in zip((0, 1, 2), request["fds"]):
        source = next(received) if fd >= 0 else os.open(os.devnull, os.O_RDWR)
        os.dup2(source, target)
        os.close(source)
    sys.stdin = io.TextIOWrapper(open(0, "rb", closefd=False), encoding="utf-8", errors="strict")
    sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), encoding="utf-8",
                                  line_buffering=os.isatty(1), write_through=False)
    sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if request.get("affinity") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, request["affinity"])
    tempfile.tempdir = None  # TMPDIR is read on first use
    sys.argv = ["synthmix", *request["argv"]]
    sys.path[:] = request["path"]  # later imports resolve as they would in the caller
    try:
        import numpy

        numpy.random.seed()  # a fresh process's unseeded numpy state, not the zygote's copy
    except ImportError:
        pass
    code = 1
    try:
        from synthmix.cli import main

        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code if isinstance(code, int) else 1)


def _supervise(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the per-request supervisor: fork the child, relay its status, kill it if the caller dies."""
    pid = os.fork()
    if pid == 0:
        conn.close()
        _child(request, fds)
    for fd in fds:
        os.close(fd)
    try:
        os.setpgid(pid, pid)  # also done by the child: whichever runs first
    except OSError:
        pass
    _log(f"{' '.join(request['argv'])}: stage {pid}")
    _send(conn, {"pid": pid})
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        readable, _, _ = select.select([conn], [], [], 0.2)
        if readable and not conn.recv(1):  # the caller is gone (killed): so is its stage
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(pid, 0)
            os._exit(0)
    reply = {"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status) else {"exit": os.waitstatus_to_exitcode(status)}
    try:
        _send(conn, reply)
    except OSError:
        pass
    os._exit(0)


def serve(directory: Path, name: str) -> int:
    import fcntl

    idle_s = float(os.environ.get("SYNTHMIX_ZYGOTE_IDLE", "300"))
    lock = open(directory / f"{name}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another zygote of this key is starting or serving
    failed = directory / f"{name}.failed"
    failed.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        _preload()
    except BaseException as err:  # noqa: BLE001 - any failure: the callers run in-process
        _log(f"preload failed: {type(err).__name__}: {err}")
        failed.touch()
        return 1
    path = directory / f"{name}.sock"
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(64)
    _log(f"serving {path} (imports {time.perf_counter() - started:.1f}s, idle exit {idle_s:.0f}s)")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    children: set[int] = set()
    last = time.monotonic()
    try:
        while True:
            for pid in list(children):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        children.discard(pid)
                except ChildProcessError:
                    children.discard(pid)
            if children or _busy(directory, name):
                last = time.monotonic()
            elif time.monotonic() - last > idle_s:
                break
            if not path.exists():  # removed by hand: stop serving
                break
            readable, _, _ = select.select([server], [], [], 1.0)
            if not readable:
                continue
            conn, _ = server.accept()
            last = time.monotonic()
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            if struct.unpack("3i", creds)[1] != os.getuid():
                conn.close()
                continue
            try:
                # the descriptors ride on the frame's first bytes: receive those with recv_fds
                data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
                if len(data) < 4:
                    raise EOFError("short frame")
                size = struct.unpack("!I", data[:4])[0]
                data = data[4:]
                while len(data) < size:
                    more = conn.recv(size - len(data))
                    if not more:
                        raise EOFError("short frame")
                    data += more
                request = json.loads(data)
            except (OSError, EOFError, ValueError) as err:
                _log(f"bad request: {err}")
                conn.close()
                continue
            if request.get("ping"):  # a caller ran a verb itself: the idle clock restarts (above)
                _log("ping: a verb ran in its caller")
                conn.close()
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                lock.close()  # a long stage must not keep the next zygote of this key from starting
                try:
                    _supervise(conn, request, fds)
                finally:
                    os._exit(1)
            children.add(pid)
            conn.close()
            for fd in fds:
                os.close(fd)
            _log(f"{' '.join(request['argv'])} in {request['cwd']}: supervisor {pid}")
    finally:
        path.unlink(missing_ok=True)  # ours: no other zygote of this key binds it while we hold the lock
        _log("idle: exiting")
    return 0


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1]), sys.argv[2]))
