"""Team sharing, proven with clones: A runs an experiment once and pushes it to each DVC remote;
per remote, B pulls it and C reruns the same params and computes nothing (run-cache).

Git remote: a bare repository. DVC remotes: a local directory, and an SSH remote served by a real
OpenSSH server started on 127.0.0.1 with key authentication (skipped where no sshd exists; CI
installs Debian's openssh-server). Both remotes are in A's committed .dvc/config; the SSH key is
per user, in .dvc/config.local.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dvc_repo import TINY, make_repo, ran_stages, sh

pytestmark = pytest.mark.slow

SETTINGS = {**TINY, "tasks": ["math"], "iterations": {"iter1": {"id": 1, "prev": 0}}}
SHARED = ("models", "data/synthetic", "data/mixed")


def digests(repo: Path) -> dict[str, str]:
    """SHA-256 of every file under the shared output folders."""
    out = {}
    for top in SHARED:
        for path in sorted((repo / top).rglob("*")):
            if path.is_file() and path.name != ".gitignore":
                out[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ssh_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An OpenSSH server on 127.0.0.1 with key auth; yields (a DVC ssh:// URL, the client key file)."""
    tmp_path = tmp_path_factory.mktemp("ssh")
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        pytest.skip("no sshd (CI installs Debian's openssh-server)")
    pytest.importorskip("dvc_ssh")
    etc = tmp_path / "sshd"
    etc.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(etc / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(etc / "client_key")], check=True)
    (etc / "authorized_keys").write_text((etc / "client_key.pub").read_text())
    os.chmod(etc / "authorized_keys", 0o600)
    port = free_port()
    (etc / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {etc / 'host_key'}\nPidFile {etc / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {etc / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "StrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(etc / "sshd_config")], stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"sshd did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
    storage = tmp_path / "ssh-storage"
    storage.mkdir()
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    try:
        yield f"ssh://{user}@127.0.0.1:{port}{storage}", str(etc / "client_key")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def shared(tmp_path_factory, request):
    """Teammate A's repository, pushed to git, with one experiment pushed to both DVC remotes (the
    directory only, where there is no sshd)."""
    tmp = tmp_path_factory.mktemp("team")
    try:
        url, keyfile = request.getfixturevalue("ssh_remote")
    except pytest.skip.Exception:
        url, keyfile = None, None
    remotes = ("store", "team") if url else ("store",)
    origin = tmp / "origin.git"
    sh(tmp, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    a = make_repo(tmp, SETTINGS)
    sh(a, "dvc", "remote", "add", "-d", "store", str(tmp / "store"))  # committed: B and C get it
    if url:
        sh(a, "dvc", "remote", "add", "team", url)
        sh(a, "dvc", "remote", "modify", "--local", "team", "keyfile", keyfile)  # per user, never committed
    sh(a, "git", "add", ".dvc/config")
    sh(a, "git", "commit", "-qm", "remotes")
    sh(a, "git", "remote", "add", "origin", str(origin))
    sh(a, "git", "push", "-q", "origin", "main")
    for remote in remotes:
        assert "[ok] DVC remote writable" in sh(a, "synthmix", "remote", "--remote", remote).stdout
    sh(a, "dvc", "exp", "run", "-n", "shared-exp", "-S", "ratio=0.25")
    for remote in remotes:
        sh(a, "dvc", "exp", "push", "--run-cache", "-r", remote, "origin", "shared-exp")
    return tmp, origin, keyfile, json.loads((a / "metrics/iterations/iter1.json").read_text()), digests(a)


def round_trip(shared, remote: str) -> None:
    """B pulls A's experiment from `remote`; C reruns its params and computes nothing."""
    tmp, origin, keyfile, metrics_a, files_a = shared

    def clone(name: str) -> Path:
        repo = tmp / f"{name}-{remote}"
        sh(tmp, "git", "clone", "-q", str(origin), str(repo))
        sh(repo, "dvc", "remote", "default", "--local", remote)
        if remote == "team":
            sh(repo, "dvc", "remote", "modify", "--local", "team", "keyfile", keyfile)
        return repo

    b = clone("b")
    sh(b, "dvc", "exp", "pull", "--run-cache", "origin", "shared-exp")
    shown = json.loads(sh(b, "dvc", "exp", "show", "--json").stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])
            if any(r.get("name") == "shared-exp" for r in e.get("revs", []))]
    assert exps, json.dumps(shown)[:2000]
    exp = next(r for r in exps[0]["revs"] if r.get("name") == "shared-exp")
    metrics_b = exp["data"]["metrics"]["metrics/iterations/iter1.json"]["data"]
    assert metrics_b == metrics_a

    sh(b, "dvc", "exp", "apply", "shared-exp")
    assert digests(b) == files_a  # models and synthetic data restored byte for byte

    # a teammate who runs the same params computes nothing: every stage comes from the run-cache
    c = clone("c")
    out = sh(c, "dvc", "exp", "run", "--pull", "-S", "ratio=0.25")
    assert ran_stages(out.stdout) == set(), out.stdout
    assert digests(c) == files_a


def test_directory_remote_round_trip(shared):
    round_trip(shared, "store")


def test_ssh_remote_round_trip(shared):
    if shared[2] is None:
        pytest.skip("no sshd (CI installs Debian's openssh-server)")
    round_trip(shared, "team")
