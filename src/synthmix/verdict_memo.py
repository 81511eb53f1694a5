"""A memo of the code judge's verdicts: a program judged once is not judged again.

Why: the judge (`synthmix.sandbox.check_function`) starts a jail and two interpreters for every
program, 35-55 ms each on a 2-core machine, and a study judges the same programs over and over.
In the default study 95-98% of an iteration's 1,000 greedy test answers are, byte for byte, an
earlier iteration's (the models write the same body for the same prompt), and 96% of validate's
sampled bodies repeat one judged before. Across a sweep the overlap is larger still.

What it stores: ``key -> status`` and nothing else.

* The key is a SHA-256 over everything the verdict depends on: the solution (prompt + body), the
  entry point, the tests, the trusted context, ``strict``, the time and memory limits, the
  isolation that ran it (a guard verdict never answers for the jail), and a fingerprint of the
  judge itself: the source of `synthmix.sandbox` and `synthmix._sandbox_child`, the interpreter
  (version and path) and, for the jail, the ``bwrap`` binary (path, size, mtime). An edit to the
  sandbox starts a fresh memo's worth of keys.
* Only outcomes the program decides are kept (`synthmix.sandbox.decided`): ``passed``,
  ``blocked``, and ``failed`` as the test runner reported it. Never ``timeout``, ``memory``,
  ``error`` or a failure without the runner's result line: those can depend on the machine's load.

So the memo changes how long judging takes, never what it finds: every stage's outputs are
byte-identical with it and without it (tests/test_verdict_memo.py). The one exception is a
program whose own outcome is random (``random.choice``, the order of a ``set`` of strings under
hash randomisation): without the memo each run draws its verdict again; with it the first draw
sticks. Such a program is not a correct solution either way.

Where: ``$SYNTHMIX_JUDGE_MEMO``, a file path, or ``off`` to judge everything afresh; by default
``$XDG_CACHE_HOME/synthmix/judge-memo.sqlite`` (``~/.cache/...``), shared by every clone, queued
experiment and worker of this user on this machine. It lives outside DVC, like a compiler cache:
it is not an output and nothing reads it as an input. SQLite (WAL) takes concurrent writers; on a
shared network home, point it at a local disk or turn it off. Anything that goes wrong with the
file (locked for too long, corrupt, read-only) warns once and judging goes on without it.
Delete the file to empty it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

MEMO_ENV = "SYNTHMIX_JUDGE_MEMO"
_OFF = ("off", "0", "false", "no", "")
_SCHEMA = "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, status TEXT NOT NULL)"
_BATCH = 500  # keys per SELECT (SQLite's default limit on bound parameters is 999 or more)


def memo_path() -> Path | None:
    """The memo's file, or None when ``$SYNTHMIX_JUDGE_MEMO`` turns it off."""
    value = os.environ.get(MEMO_ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "synthmix" / "judge-memo.sqlite"


def judge_fingerprint(isolation: str) -> str:
    """What, besides the program and its tests, a verdict depends on: the judge's own code, the
    interpreter that runs it and, in the jail, bwrap."""
    from synthmix import _sandbox_child, sandbox

    h = hashlib.sha256()
    for module in (sandbox, _sandbox_child):
        h.update(Path(module.__file__).read_bytes())
    h.update(f"{sys.version}\0{os.path.realpath(sys.executable)}\0{isolation}".encode())
    if isolation == "bubblewrap":
        exe = shutil.which("bwrap") or ""
        st = os.stat(exe) if exe else None
        h.update(f"{exe}\0{st.st_size if st else 0}\0{st.st_mtime_ns if st else 0}".encode())
    return h.hexdigest()


def verdict_key(fingerprint: str, solution: str, entry_point: str, tests: str, context: str, strict: bool,
                timeout_s: float, memory_mb: int) -> str:
    """The memo's key for one `check_function` call under the judge `fingerprint`."""
    h = hashlib.sha256()
    for part in (fingerprint, solution, entry_point, tests, context, repr(bool(strict)),
                 repr(float(timeout_s)), repr(int(memory_mb))):
        data = part.encode("utf-8", errors="surrogatepass")
        h.update(len(data).to_bytes(8, "little") + data)  # length-prefixed: no two splits collide
    return h.hexdigest()


class VerdictMemo:
    """The SQLite file of verdicts. Open one per process (a connection does not survive a fork)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pid = -1
        self._broken = False

    @classmethod
    def from_env(cls) -> VerdictMemo | None:
        path = memo_path()
        return cls(path) if path is not None else None

    def _connect(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        if self._db is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._db, self._pid = db, os.getpid()
        return self._db

    def _fail(self, exc: BaseException) -> None:
        if not self._broken:
            warnings.warn(f"judge memo {self.path} unusable ({exc}); judging without it "
                          f"(set {MEMO_ENV}=off to silence, or delete the file)", RuntimeWarning, stacklevel=3)
        self._broken = True

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The stored status of each of `keys` that has one."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        try:
            db = self._connect()
            if db is None:
                return found
            for i in range(0, len(wanted), _BATCH):
                chunk = wanted[i : i + _BATCH]
                rows = db.execute(f"SELECT key, status FROM verdicts WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                found.update(rows.fetchall())
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc)
            return {}
        return found

    def put_many(self, verdicts: dict[str, str]) -> None:
        """Store `verdicts` (key -> status), in one transaction."""
        if not verdicts:
            return
        try:
            db = self._connect()
            if db is None:
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO verdicts (key, status) VALUES (?, ?)", verdicts.items())
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc)
