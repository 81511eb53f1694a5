"""A real one-node Slurm cluster on 127.0.0.1 for tests: Debian's munged, slurmctld and slurmd, each
with its files in a temporary directory (its own munge socket and key, state, spool, logs and ports),
as tests/test_pipeline.py starts a real sshd. Needs root and the Debian packages slurmctld, slurmd,
slurm-client and munge (.ci/run installs them)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")


def missing() -> str | None:
    """Why no cluster can start here (None when one can)."""
    if os.geteuid() != 0:
        return "Slurm daemons need root"
    absent = [d for d in DAEMONS if not shutil.which(d) and not os.path.exists(f"/usr/sbin/{d}")]
    return f"not installed: {', '.join(absent)} (apt-get install slurmctld slurmd slurm-client munge)" if absent else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _wait(what: str, ok, timeout: float = 30.0, log: Path | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ok():
            return
        time.sleep(0.2)
    tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not come up in {timeout:.0f}s\n{tail}")


@contextmanager
def cluster(root: Path, cpus: int = 2) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd under `root`; yield the environment (SLURM_CONF) for sbatch,
    squeue and scontrol; stop everything after."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(exist_ok=True)
    key = root / "munge" / "munge.key"
    subprocess.run([_which("mungekey"), "--create", f"--keyfile={key}", "--force"], check=True, capture_output=True)
    os.chmod(key, 0o600)
    sock = root / "munge" / "munge.sock"
    subprocess.run([_which("munged"), f"--key-file={key}", f"--socket={sock}", f"--pid-file={root / 'munge/munged.pid'}",
                    f"--log-file={root / 'munge/munged.log'}", f"--seed-file={root / 'munge/seed'}", "--force"],
                   check=True, capture_output=True)
    conf = root / "slurm.conf"
    conf.write_text(f"""ClusterName=synthmixtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=86400
KillWait=5
SlurmctldLogFile={root / 'slurmctld.log'}
SlurmdLogFile={root / 'slurmd.log'}
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        subprocess.run([_which("slurmctld"), "-f", str(conf), "-i"], check=True, env=env, capture_output=True)
        subprocess.run([_which("slurmd"), "-f", str(conf), "-N", "localhost"], check=True, env=env, capture_output=True)

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
            return "idle" in out

        _wait("the Slurm node", idle, log=root / "slurmctld.log")
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True)
        for pidfile in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            path = root / pidfile
            if path.exists():
                try:
                    os.kill(int(path.read_text().split()[0]), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
