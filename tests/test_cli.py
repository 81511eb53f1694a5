"""The `synthmix` command: help that explains, and params validated before any work."""

import subprocess
import sys

import pytest

from synthmix.cli import VERBS, main


def test_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for verb, (_, _, short, _) in VERBS.items():
        assert verb in out and short in out


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_each_verb_has_its_own_help(verb, capsys):
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert " ".join(VERBS[verb][3].split()[:6]) in out
    assert ("--iteration" in out) == VERBS[verb][1]


def test_invalid_params_exit_2_naming_the_key_and_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("ratio: 1.5\ntasks: [math]\n")
    proc = subprocess.run([sys.executable, "-m", "synthmix.cli", "prepare"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "ratio: Input should be less than or equal to 1 (got 1.5)" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_iteration_out_of_range_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("tasks: [math]\n")
    assert main(["train", "--iteration", "7"]) == 2
    assert "outside 0..3" in capsys.readouterr().err
