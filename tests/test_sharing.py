"""Team sharing, proven with two clones: A runs and pushes an experiment, B pulls it.

Git remote: a bare repository. DVC remote: a local directory, and an SSH remote served by a real
OpenSSH server started on 127.0.0.1 with key authentication (skipped where no sshd exists; CI
installs Debian's openssh-server).
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


@pytest.fixture
def ssh_remote(tmp_path: Path) -> Iterator[str]:
    """An OpenSSH server on 127.0.0.1 with key auth; yields a DVC ssh:// URL (keyfile configured via env)."""
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


def round_trip(tmp_path: Path, configure_remote) -> None:
    origin = tmp_path / "origin.git"
    sh(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))

    a = make_repo(tmp_path, SETTINGS)
    configure_remote(a)
    sh(a, "git", "add", ".dvc/config")
    sh(a, "git", "commit", "-qm", "remote")
    sh(a, "git", "remote", "add", "origin", str(origin))
    sh(a, "git", "push", "-q", "origin", "main")
    assert "[ok] DVC remote writable" in sh(a, "synthmix", "remote").stdout

    sh(a, "dvc", "exp", "run", "-n", "shared-exp", "-S", "ratio=0.25")
    sh(a, "dvc", "exp", "push", "--run-cache", "origin", "shared-exp")
    metrics_a = json.loads((a / "metrics/iterations/iter1.json").read_text())
    files_a = digests(a)

    b = tmp_path / "b"
    sh(tmp_path, "git", "clone", "-q", str(origin), str(b))
    configure_remote(b, local_only=True)
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
    c = tmp_path / "c"
    sh(tmp_path, "git", "clone", "-q", str(origin), str(c))
    configure_remote(c, local_only=True)
    out = sh(c, "dvc", "exp", "run", "--pull", "-S", "ratio=0.25")
    assert ran_stages(out.stdout) == set(), out.stdout
    assert digests(c) == files_a


def test_directory_remote_round_trip(tmp_path):
    store = tmp_path / "store"

    def configure(repo: Path, local_only: bool = False) -> None:
        if not local_only:  # committed in A's .dvc/config: B and C get it with the clone
            sh(repo, "dvc", "remote", "add", "-d", "store", str(store))

    round_trip(tmp_path, configure)


def test_ssh_remote_round_trip(tmp_path, ssh_remote):
    url, keyfile = ssh_remote

    def configure(repo: Path, local_only: bool = False) -> None:
        if not local_only:
            sh(repo, "dvc", "remote", "add", "-d", "team", url)
        # credentials are per user: .dvc/config.local, never committed
        sh(repo, "dvc", "remote", "modify", "--local", "team", "keyfile", keyfile)

    round_trip(tmp_path, configure)
