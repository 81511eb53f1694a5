"""The summary stage: deltas against iteration 0 and per-task curves."""

import json

import pytest

from synthmix import paths, summary
from synthmix.params import parse_params


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_summary_and_curves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = parse_params({"tasks": ["math", "code"]})
    row = lambda s, e: {"score": s, "ece": e, "self_bleu": 0.5, "distinct_2": 0.4}  # noqa: E731
    write(paths.scores(0), {"math": row(0.5, 0.1), "code": row(0.0, 0.2)})
    write(paths.scores(1), {"math": row(0.4, 0.2), "code": row(0.1, 0.2)})
    write(paths.gate(1), {"flagged": True})
    summary.run(params)
    out = json.loads((tmp_path / "metrics/summary.json").read_text())
    assert out["math"]["iter1"]["score_delta"] == pytest.approx(-0.1)
    assert out["math"]["iter1"]["score_relative_change"] == pytest.approx(-0.2)
    assert out["math"]["iter1"]["ece_relative_change"] == pytest.approx(1.0)
    assert out["code"]["iter1"]["score_relative_change"] is None  # no relative change from 0
    assert out["gate"] == {"iter1": {"flagged": True}}
    curve = json.loads((tmp_path / "metrics/curves/score.json").read_text())
    assert curve == [{"iteration": 0, "math": 0.5, "code": 0.0}, {"iteration": 1, "math": 0.4, "code": 0.1}]


def test_summary_needs_the_baseline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(paths.scores(1), {"math": {"score": 1, "ece": 0}})
    with pytest.raises(FileNotFoundError, match="iter0.json"):
        summary.run(parse_params({"tasks": ["math"]}))
