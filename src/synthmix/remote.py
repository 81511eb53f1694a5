"""`synthmix remote`: is this repository ready to share its experiments with the team?

Checks, with DVC's own API, that a DVC remote is configured, that its storage plugin is
installed, that it can be reached and (unless told not to) written to; and that git has the
remote that `dvc exp push` sends experiments to. Says what is missing and the command to fix it.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass

from synthmix.params import Params


@dataclass
class Check:
    what: str
    ok: bool
    detail: str


def _dvc_remote(name: str | None, write: bool) -> list[Check]:
    from dvc.config import RemoteConfigError
    from dvc.repo import Repo

    try:
        repo = Repo(".")
    except Exception as err:  # not a DVC repository at all
        return [Check("DVC repository", False, f"{err} (run `dvc init` in the project root)")]
    try:
        remote = repo.cloud.get_remote(name, command="synthmix remote")
    except RemoteConfigError as err:
        return [Check("DVC remote configured", False, str(err))]
    except Exception as err:  # e.g. a missing storage plugin: DVC's message names the pip extra
        return [Check("DVC remote configured", False, str(err))]
    url = repo.config["remote"][remote.name]["url"]
    checks = [Check("DVC remote configured", True, f"'{remote.name}' -> {url}")]
    try:
        exists = remote.fs.exists(remote.path)
    except Exception as err:
        return checks + [Check("DVC remote reachable", False, f"{type(err).__name__}: {err}")]
    checks.append(Check("DVC remote reachable", True, "storage exists" if exists else "reachable; storage will be created on first push"))
    if write:
        probe = remote.fs.join(remote.path, f".synthmix-probe-{uuid.uuid4().hex}")
        try:
            remote.fs.makedirs(remote.path, exist_ok=True)
            remote.fs.pipe_file(probe, b"synthmix remote check\n")
            remote.fs.rm_file(probe)
            checks.append(Check("DVC remote writable", True, "wrote and removed a probe file"))
        except Exception as err:
            checks.append(Check("DVC remote writable", False, f"{type(err).__name__}: {err}"))
    return checks


def _git_remote(name: str) -> Check:
    proc = subprocess.run(["git", "remote", "get-url", name], capture_output=True, text=True)
    if proc.returncode:
        return Check(f"git remote '{name}'", False,
                     f"none: `dvc exp push {name}` needs one (git remote add {name} <url>)")
    return Check(f"git remote '{name}'", True, proc.stdout.strip())


def check(remote: str | None = None, git_remote: str = "origin", write: bool = True) -> list[Check]:
    """Every readiness check, in order."""
    return _dvc_remote(remote, write) + [_git_remote(git_remote)]


def run(params: Params, remote: str | None = None, git_remote: str = "origin", write: bool = True) -> int:
    """Print each check; exit 1 when any failed."""
    checks = check(remote, git_remote, write)
    for c in checks:
        print(f"[{'ok' if c.ok else 'MISSING'}] {c.what}: {c.detail}")
    return 0 if all(c.ok for c in checks) else 1
