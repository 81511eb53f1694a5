"""The early-warning gate: ECE vs iteration 0, relative rise and silent drift."""

from __future__ import annotations

import json

import pytest

from synthmix.gate import check


def one(ece0, ece, score0=0.5, score=0.5, **kw):
    result = check(1, {"math": {"score": score0, "ece": ece0}}, {"math": {"score": score, "ece": ece}}, **kw)
    (verdict,) = result.tasks
    assert verdict.flagged == result.flagged
    return verdict


def rules(verdict) -> set[str]:
    return {r.split(":")[0] for r in verdict.reasons}


def test_relative_rule_boundary():
    # +50% exactly does not trip (score moved, so silent drift cannot trip either)
    assert not one(0.2, 0.3, score=0.3).flagged
    v = one(0.2, 0.301, score=0.3)
    assert v.flagged and rules(v) == {"ece_relative_rise"}
    assert v.ece_relative_change == pytest.approx(0.505)
    assert not one(0.3, 0.45, score=0.3).flagged  # (0.45-0.3)/0.3 == 0.5000000000000001 in floats
    # a smaller ECE0 trips on a small absolute rise
    assert rules(one(0.02, 0.031, score=0.3)) == {"ece_relative_rise"}


def test_relative_threshold_is_configurable():
    assert not one(0.2, 0.301, score=0.3, ece_relative_rise=1.0).flagged
    assert one(0.2, 0.401, score=0.3, ece_relative_rise=1.0).flagged


def test_silent_drift_absolute_boundary():
    # +0.05 exactly with a flat score: no; +0.06: yes (relative +30% / +24%: below +50%)
    assert not one(0.2, 0.25).flagged
    assert not one(0.7, 0.75).flagged  # 0.75 - 0.7 == 0.050000000000000044 in floats
    v = one(0.25, 0.31)
    assert v.flagged and rules(v) == {"silent_drift"}


def test_silent_drift_needs_a_flat_score():
    # score band: |score - 0.5| <= 0.02 * 0.5 = 0.01
    assert one(0.25, 0.31, score0=0.5, score=0.51).flagged  # on the band's edge: flat
    assert one(0.25, 0.31, score0=0.5, score=0.49).flagged
    assert not one(0.25, 0.31, score0=0.5, score=0.5101).flagged  # score moved: visible drift
    assert not one(0.25, 0.31, score0=0.5, score=0.40).flagged
    assert one(0.25, 0.31, score0=0.5, score=0.45, score_flat=0.1).flagged


def test_score0_zero_uses_an_absolute_band():
    v = one(0.25, 0.31, score0=0.0, score=0.02)
    assert v.flagged and v.score_relative_change is None
    assert not one(0.25, 0.31, score0=0.0, score=0.03).flagged


def test_ece0_zero_only_the_absolute_rule():
    v = one(0.0, 0.04)
    assert not v.flagged and v.ece_relative_change is None  # a rise of "infinite %" is not enough
    v = one(0.0, 0.06)
    assert v.flagged and rules(v) == {"silent_drift"}
    assert not one(0.0, 0.3, score=0.3).flagged  # score moved: the absolute rule needs it flat


def test_both_rules_and_no_change():
    v = one(0.1, 0.2)
    assert rules(v) == {"ece_relative_rise", "silent_drift"}
    v = one(0.1, 0.1)
    assert not v.flagged and v.reasons == [] and v.ece_relative_change == 0.0
    assert not one(0.3, 0.1).flagged  # ECE fell


def test_multiple_tasks_and_message():
    reference = {
        "math": {"score": 0.40, "ece": 0.10},
        "code": {"score": 0.30, "ece": 0.20},
        "reading": {"score": 0.60, "ece": 0.05},
        "factual": {"score": 0.0, "ece": 0.0},  # reference-only tasks are fine
    }
    current = {
        "math": {"score": 0.30, "ece": 0.18},  # +80%: relative rule
        "code": {"score": 0.30, "ece": 0.27},  # +0.07 (+35%), score flat: silent drift
        "reading": {"score": 0.55, "ece": 0.06},  # fine
    }
    result = check(2, reference, current)
    assert result.flagged
    assert [t.task for t in result.tasks] == ["math", "code", "reading"]
    assert [t.flagged for t in result.tasks] == [True, True, False]
    msg = result.message(ratio=0.3)
    assert "iteration 2" in msg and "2 of 3 task(s)" in msg
    assert "math: ece_relative_rise: ECE 0.1000 -> 0.1800 (+80.0%" in msg
    assert "code: silent_drift: ECE 0.2000 -> 0.2700 (+0.0700" in msg and "0.3000 -> 0.3000" in msg
    assert "reading" not in msg
    assert "lower `ratio` (now 0.3) or set gate.mode=warn to continue" in msg
    assert "lower `ratio` or set gate.mode=warn" in result.message()
    d = result.to_dict()
    json.dumps(d)
    assert d["iteration"] == 2 and d["tasks"][0]["ece_relative_change"] == pytest.approx(0.8)

    ok = check(1, reference, {"reading": {"score": 0.6, "ece": 0.05}})
    assert not ok.flagged and "passed" in ok.message(ratio=0.3)


def test_unknown_task_and_missing_metric():
    with pytest.raises(ValueError, match="'commonsense'"):
        check(1, {"math": {"score": 0.4, "ece": 0.1}}, {"commonsense": {"score": 0.4, "ece": 0.1}})
    with pytest.raises(ValueError, match="'ece'"):
        check(1, {"math": {"score": 0.4}}, {"math": {"score": 0.4, "ece": 0.1}})
