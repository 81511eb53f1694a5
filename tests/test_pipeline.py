"""End to end through the real `dvc` CLI, in a temporary git repository, on tiny settings.

Slow by nature (each stage is a real process that imports torch); kept to a few runs that each
check several things. Team sharing is proven on the same study, with clones: A's repository (the
study) has a git remote (a bare repository) and two DVC remotes in its committed .dvc/config, a
local directory and an SSH remote served by a real OpenSSH server on 127.0.0.1 with key
authentication (skipped where no sshd exists; CI installs Debian's openssh-server; the key is per
user, in .dvc/config.local). A pushes its ratio-0.3 experiment to each; per remote, B pulls it and
C reruns the same params and computes nothing (run-cache).
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

import yaml
from dvc_repo import TINY, make_repo, offline, ran_stages, sh

pytestmark = pytest.mark.slow


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
def study(tmp_path_factory, request) -> Path:
    """A repository where the tiny study has run once with `dvc exp run`, with its remotes: git
    (`origin`, a bare repository) and DVC (`store`, a directory, the default; `team`, SSH, where
    there is an sshd), both committed, so clones get them."""
    tmp = tmp_path_factory.mktemp("pipeline")
    repo = make_repo(tmp, {**TINY, "tasks": ["math", "commonsense"]})
    try:
        url, keyfile = request.getfixturevalue("ssh_remote")
    except pytest.skip.Exception:
        url, keyfile = None, None
    sh(tmp, "git", "init", "-q", "--bare", "-b", "main", str(tmp / "origin.git"))
    sh(repo, "dvc", "remote", "add", "-d", "store", str(tmp / "store"))
    if url:
        sh(repo, "dvc", "remote", "add", "team", url)
        sh(repo, "dvc", "remote", "modify", "--local", "team", "keyfile", keyfile)  # per user, never committed
    sh(repo, "git", "add", ".dvc/config")
    sh(repo, "git", "commit", "-qm", "remotes")
    sh(repo, "git", "remote", "add", "origin", str(tmp / "origin.git"))
    sh(repo, "git", "push", "-q", "origin", "main")
    # with no network at all: nothing may wait on a hub or telemetry time-out
    first = sh(repo, *offline(("dvc", "exp", "run")))
    (repo / "first_run.log").write_text(first.stdout + first.stderr)
    return repo


@pytest.fixture(scope="module")
def new_ratio(study: Path) -> tuple[str, dict, dict[str, str]]:
    """`dvc exp run -n new-ratio -S ratio=0.3` in the study: (its output, iteration 1's metrics,
    the digests of its shared outputs)."""
    out = sh(study, "dvc", "exp", "run", "-n", "new-ratio", "-S", "ratio=0.3").stdout
    return out, json.loads((study / "metrics/iterations/iter1.json").read_text()), digests(study)


def test_the_study_produces_every_versioned_output(study):
    for it in (0, 1, 2):
        for task in ("math", "commonsense"):
            assert (study / f"models/iter{it}/{task}/model.safetensors").exists()
            assert (study / f"data/predictions/iter{it}/{task}.jsonl").exists()
        scores = json.loads((study / f"metrics/iterations/iter{it}.json").read_text())
        assert set(scores) == {"math", "commonsense"}
        assert {"score", "score_se", "ece", "ece_10", "ece_15", "self_bleu", "distinct_1", "distinct_2"} <= set(scores["math"])
    # the base: pretrained once, loadable, and what phase 0 fine-tuned (same vocabulary and shape)
    base = study / "models/base/tiny"
    assert (base / "model.safetensors").exists() and (base / "tokenizer.json").exists()
    pretrained = json.loads((study / "metrics/pretrain/tiny.json").read_text())
    assert pretrained["steps"] >= 1 and set(pretrained["documents_per_family"]) == {
        "code", "commonsense", "factual", "math", "reading"}
    for it in (1, 2):
        assert (study / f"data/synthetic/raw/iter{it}/math.jsonl").exists()
        report = json.loads((study / f"metrics/validation/iter{it}.json").read_text())
        assert "math" in report
        mix = json.loads((study / f"metrics/mix/iter{it}.json").read_text())
        assert mix["math"]["synthetic"] == round(0.2 * 48)
    summary = json.loads((study / "metrics/summary.json").read_text())
    assert set(summary["math"]) == {"iter0", "iter1", "iter2"}


def test_metrics_and_plots_through_dvc(study):
    shown = json.loads(sh(study, "dvc", "metrics", "show", "--json").stdout)
    flat = json.dumps(shown)
    assert "metrics/iterations/iter2.json" in flat and '"ece_15"' in flat
    html = sh(study, "dvc", "plots", "show", "-o", "plots_html").stdout
    assert (study / "plots_html/index.html").exists(), html
    page = (study / "plots_html/index.html").read_text()
    for plot in ("metrics_curves_score_json", "metrics_curves_ece_json", "metrics_curves_reliability_json",
                 "metrics_curves_train_loss_json", "metrics_curves_synthetic_accuracy_json",
                 "metrics_pretrain_tiny_plots_metrics_loss_tsv"):
        assert plot in page
    # one reliability diagram per task and iteration, with the diagonal; training curves per task
    vega = json.loads(sh(study, "dvc", "plots", "show", "--json", "metrics/curves/reliability.json").stdout)
    spec = next(entry[0]["content"] for key, entry in vega["data"].items() if key.endswith("metrics/curves/reliability.json")
                and entry and "facet" in entry[0]["content"])
    assert spec["facet"]["row"]["field"] == "task" and spec["facet"]["column"]["field"] == "iteration"
    assert spec["spec"]["layer"][0]["encoding"]["x2"] == {"datum": 1}  # the perfect-calibration diagonal
    rows = spec["data"]["values"]
    assert {(r["task"], r["iteration"]) for r in rows} == {(t, i) for t in ("math", "commonsense") for i in (0, 1, 2)}
    curves = json.loads((study / "metrics/curves/train_loss.json").read_text())
    assert {(r["task"], r["iteration"]) for r in curves} == {(t, i) for t in ("math", "commonsense") for i in (0, 1, 2)}
    synthetic = json.loads((study / "metrics/curves/synthetic_accuracy.json").read_text())
    assert [r["iteration"] for r in synthetic] == [1, 2] and all(0 <= r["math"] <= 1 for r in synthetic)
    assert "gitignore" not in page
    assert "cdn.jsdelivr" not in page and "vegaEmbed" in page  # Vega inlined: renders offline


def test_nothing_changed_runs_no_stage(study):
    out = sh(study, "dvc", "repro")
    assert ran_stages(out.stdout) == set(), out.stdout


def test_a_new_ratio_reruns_only_what_depends_on_it(study, new_ratio):
    ran = ran_stages(new_ratio[0])
    assert "mix@iter1" in ran and "train@iter2" in ran
    # external data, tokenizer, the baseline and iteration 1's synthetic data come from the cache
    assert not ran & {"pretrain", "prepare", "tokenizer", "baseline_mix", "baseline_train", "baseline_evaluate", "generate@iter1",
                      "validate@iter1"}, ran
    mix = json.loads((study / "metrics/mix/iter1.json").read_text())
    assert mix["math"]["synthetic"] == round(0.3 * 48)
    diff = sh(study, "dvc", "metrics", "diff", "--json").stdout
    assert "metrics/iterations/iter1.json" in diff


def round_trip(study: Path, new_ratio: tuple[str, dict, dict[str, str]], remote: str) -> None:
    """A pushes the new-ratio experiment to `remote`; B pulls it; C reruns its params and computes
    nothing."""
    _, metrics_a, files_a = new_ratio
    assert "[ok] DVC remote writable" in sh(study, "synthmix", "remote", "--remote", remote).stdout
    sh(study, "dvc", "exp", "push", "--run-cache", "-r", remote, "origin", "new-ratio")
    tmp = study.parent
    # the SSH key is A's own setting (.dvc/config.local, never committed): each clone sets it again
    keyfile = sh(study, "dvc", "config", "--local", f"remote.{remote}.keyfile").stdout.strip() if remote == "team" else None

    def clone(name: str) -> Path:
        repo = tmp / f"{name}-{remote}"
        sh(tmp, "git", "clone", "-q", str(tmp / "origin.git"), str(repo))
        sh(repo, "dvc", "remote", "default", "--local", remote)
        if keyfile:
            sh(repo, "dvc", "remote", "modify", "--local", "team", "keyfile", keyfile)
        return repo

    b = clone("b")
    sh(b, "dvc", "exp", "pull", "--run-cache", "origin", "new-ratio")
    shown = json.loads(sh(b, "dvc", "exp", "show", "--json").stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])
            if any(r.get("name") == "new-ratio" for r in e.get("revs", []))]
    assert exps, json.dumps(shown)[:2000]
    exp = next(r for r in exps[0]["revs"] if r.get("name") == "new-ratio")
    assert exp["data"]["metrics"]["metrics/iterations/iter1.json"]["data"] == metrics_a

    sh(b, "dvc", "exp", "apply", "new-ratio")
    assert digests(b) == files_a  # models and synthetic data restored byte for byte

    # a teammate who runs the same params computes nothing: every stage comes from the run-cache
    c = clone("c")
    out = sh(c, "dvc", "exp", "run", "--pull", "-S", "ratio=0.3")
    assert ran_stages(out.stdout) == set(), out.stdout
    assert digests(c) == files_a


def test_directory_remote_round_trip(study, new_ratio):
    round_trip(study, new_ratio, "store")


def test_ssh_remote_round_trip(study, new_ratio):
    if "team" not in sh(study, "dvc", "remote", "list").stdout:
        pytest.skip("no sshd (CI installs Debian's openssh-server)")
    round_trip(study, new_ratio, "team")


def test_invalid_params_stop_before_anything_is_written(tmp_path):
    repo = make_repo(tmp_path, {**TINY, "ratio": 1.5, "tasks": ["math"]})
    out = sh(repo, "dvc", "repro", check=False)
    assert out.returncode != 0
    assert "ratio: Input should be less than or equal to 1 (got 1.5)" in out.stdout + out.stderr
    assert not (repo / "data/external").exists()


def copy_of(study: Path, tmp_path: Path) -> Path:
    """The study repository copied whole (git, DVC cache, lock): its finished stages stay finished."""
    return Path(shutil.copytree(study, tmp_path / "study", symlinks=True))


def test_halt_gate_stops_the_next_iteration_and_keeps_what_ran(study, tmp_path):
    # The premise: a task's ECE rose at iteration 1. On 12 test questions the direction of
    # ECE's change is noise (seed 0 at ratio 0.2 falls by 1.8%, at 0.3 it rises), so the premise is
    # found, not assumed: only the mix and iteration 1 rerun per ratio (~11 s each); the baseline is
    # the study's, already run. What is under test is what a halt does once the gate trips.
    repo = copy_of(study, tmp_path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    tried = {}
    for ratio in (0.2, 0.3, 0.5, 0.1, 0.4):
        params["ratio"] = ratio
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        sh(repo, "dvc", "repro", "gate@iter1")
        gate = json.loads((repo / "metrics/gate/iter1.json").read_text())
        rises = [gate[t]["ece_relative_change"] for t in ("commonsense", "math") if gate[t]["ece_relative_change"] is not None]
        rise = max(rises, default=None)
        tried[ratio] = rise
        if rise is not None and rise > 0:
            break
    else:
        pytest.fail(f"ECE fell at iteration 1 for every ratio tried: {tried}")
    # a halt threshold below the observed rise: the gate must trip and stop iteration 2
    params["gate"] = {"mode": "halt", "ece_relative_rise": rise / 2, "ece_absolute_rise": 1.0, "score_flat": 0.0}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(repo, "dvc", "repro", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "generate@iter2" in text and f"lower `ratio` (now {ratio})" in text and "gate.mode=warn" in text
    assert json.loads((repo / "metrics/gate/iter1.json").read_text())["flagged"] is True
    assert (repo / "models/iter1/commonsense/model.safetensors").exists()
    assert not (repo / "data/synthetic/raw/iter2").exists()
    status = sh(repo, "dvc", "status", "train@iter1").stdout
    assert "changed" not in status  # iteration 1 is committed, not lost


def test_validation_fail_policy_fails_the_stage(study, tmp_path):
    repo = copy_of(study, tmp_path)  # generate@iter1 has run there
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["validate"] = {"on_invalid": "fail", "max_duplicate_rate": 0.5}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "generate@iter1" not in ran_stages(sh(repo, "dvc", "repro", "generate@iter1").stdout)
    # a generated set with answers that cannot be parsed (as an undertrained model writes them)
    raw = repo / "data/synthetic/raw/iter1/math.jsonl"
    rows = [json.loads(line) for line in raw.read_text().splitlines()]
    for row in rows[:5]:
        row["completion"] = " I do not know"
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = sh(repo, "dvc", "repro", "--single-item", "validate@iter1", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "malformed" in text and rows[0]["id"] in text
    assert raw.exists()  # the raw set is always kept
    assert not (repo / "data/synthetic/validated/iter1/math.jsonl").exists()


def test_a_new_seed_or_ratio_never_retrains_the_base(study, tmp_path):
    """The base is pretrained once per size: dvc skips the stage whatever the experiment's seed,
    ratio or tasks (it reads model, tokenizer and pretrain only), and reruns it for its own seed."""
    repo = copy_of(study, tmp_path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(seed=1, ratio=0.5, tasks=["math"])
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(repo, "dvc", "repro", "pretrain")
    assert "pretrain" not in ran_stages(out.stdout), out.stdout
    params["pretrain"] = {**params["pretrain"], "seed": 1}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(sh(repo, "dvc", "repro", "--dry", "pretrain").stdout) == {"pretrain"}


def test_a_fine_tuning_schedule_for_later_iterations_reuses_phase_0(study, tmp_path):
    """train.init and train.later_learning_rate are read from iteration 1 on: changing them reruns
    iterations 1+ and not phase 0; a key phase 0 reads (the learning rate) reruns it."""
    repo = copy_of(study, tmp_path)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"] = {**params["train"], "init": "previous", "later_learning_rate": 1e-4}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = ran_stages(sh(repo, "dvc", "repro", "--dry").stdout)
    assert "train@iter1" in ran and "baseline_train" not in ran and "baseline_evaluate" not in ran, ran
    params["train"]["learning_rate"] *= 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "baseline_train" in ran_stages(sh(repo, "dvc", "repro", "--dry").stdout)
