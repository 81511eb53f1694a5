"""Mixing external and synthetic data at the synthetic proportion `ratio`."""

from __future__ import annotations

import copy
import random
from collections import Counter

import pytest

from synthmix.mixing import MixCounts, mix


def external(n: int = 100) -> list[dict]:
    return [{"id": f"e{i}", "prompt": f"p{i}", "completion": f" c{i}"} for i in range(n)]


def synthetic(iterations: int = 3, n: int = 100) -> dict[int, list[dict]]:
    """Answers-mode samples: iteration j's answer to external prompt i (origin.source_id)."""
    return {
        j: [{"id": f"s{j}-{i}", "prompt": f"p{i}", "completion": f" g{j}-{i}",
             "origin": {"iteration": j, "source_id": f"e{i}"}} for i in range(n)]
        for j in range(1, iterations + 1)
    }


def instances(iterations: int = 3, n: int = 100) -> dict[int, list[dict]]:
    """Instances-mode samples: whole new examples, no source prompt."""
    return {
        j: [{"id": f"s{j}-{i}", "prompt": f"new{j}-{i}", "completion": f" g{j}-{i}",
             "origin": {"iteration": j, "parsed": True}} for i in range(n)]
        for j in range(1, iterations + 1)
    }


def by_source(rows: list[dict]) -> Counter:
    return Counter((r["source"], r["origin_iteration"]) for r in rows)


@pytest.mark.parametrize(
    ("ratio", "n_syn"),
    [(0.0, 0), (0.2, 20), (0.25, 25), (0.5, 50), (0.333, 33), (1.0, 100)],
)
def test_replace_counts(ratio, n_syn):
    rows, counts = mix(external(), synthetic(), ratio=ratio, mode="replace", iteration=2, seed=0)
    assert len(rows) == 100
    expected_iters = {2: n_syn}
    assert counts == MixCounts(
        external=100 - n_syn, synthetic=n_syn, total=100, synthetic_fraction=n_syn / 100,
        synthetic_by_iteration=expected_iters, requested_synthetic=n_syn, requested_ratio=ratio,
        removed=n_syn, repeated_prompts=0,
    )
    assert by_source(rows) == Counter({("external", 0): 100 - n_syn, ("synthetic", 2): n_syn}) - Counter()
    # synthetic samples come from this iteration only, no sample twice
    assert all(r["id"].startswith(("e", "s2-")) for r in rows)
    assert len({r["id"] for r in rows}) == 100


def test_ratio_zero_is_the_shuffled_external_set_in_both_modes():
    ext = external()
    expected = [dict(e, source="external", origin_iteration=0) for e in ext]
    random.Random(7 + 2).shuffle(expected)
    for mode in ("replace", "accumulate"):
        rows, counts = mix(ext, synthetic(), ratio=0.0, mode=mode, iteration=2, seed=7)
        assert rows == expected
        assert counts.synthetic == 0 and counts.synthetic_fraction == 0.0


@pytest.mark.parametrize(
    ("ratio", "per_iter"),
    [(0.2, 25), (0.5, 100), (0.1, 11)],  # round(r/(1-r)*100): 25, 100, 11.1 -> 11
)
def test_accumulate_counts_and_growth(ratio, per_iter):
    syn = synthetic(3, 100)
    previous_synthetic: set[str] = set()
    for it in (1, 2, 3):
        rows, counts = mix(external(), syn, ratio=ratio, mode="accumulate", iteration=it, seed=3)
        assert counts.external == 100
        assert counts.synthetic_by_iteration == {j: per_iter for j in range(1, it + 1)}
        assert counts.synthetic == it * per_iter
        assert counts.total == len(rows) == 100 + it * per_iter
        assert counts.synthetic_fraction == pytest.approx(it * per_iter / (100 + it * per_iter))
        assert {r["id"] for r in rows if r["source"] == "external"} == {e["id"] for e in external()}
        # iteration i's synthetic part extends iteration i-1's (each iteration's draw is fixed)
        now = {r["id"] for r in rows if r["source"] == "synthetic"}
        assert previous_synthetic <= now
        previous_synthetic = now
    # iteration 1 has the replace-mode fraction
    _, first = mix(external(), syn, ratio=0.2, mode="accumulate", iteration=1, seed=3)
    assert first.synthetic_fraction == pytest.approx(0.2)


def test_iteration_zero_is_external_only():
    rows, counts = mix(external(), {}, ratio=0.5, mode="replace", iteration=0, seed=0)
    assert counts.synthetic == 0 and counts.total == 100 and counts.synthetic_by_iteration == {}


def test_deterministic_and_seed_dependent():
    a = mix(external(), synthetic(), ratio=0.3, mode="replace", iteration=1, seed=5)
    b = mix(external(), synthetic(), ratio=0.3, mode="replace", iteration=1, seed=5)
    c = mix(external(), synthetic(), ratio=0.3, mode="replace", iteration=1, seed=6)
    assert a == b
    assert [r["id"] for r in a[0]] != [r["id"] for r in c[0]]


def test_inputs_not_mutated_and_tags_added():
    ext, syn = external(), synthetic()
    ext_before, syn_before = copy.deepcopy(ext), copy.deepcopy(syn)
    rows, _ = mix(ext, syn, ratio=0.5, mode="accumulate", iteration=2, seed=0)
    assert ext == ext_before and syn == syn_before
    assert all("source" not in e for e in ext)
    tagged = next(r for r in rows if r["source"] == "synthetic")
    assert tagged["origin"]["iteration"] == tagged["origin_iteration"]  # provenance fields kept
    assert {r["source"] for r in rows} == {"external", "synthetic"}


def test_shortage_error_names_needed_and_available():
    syn = {1: synthetic(1, 100)[1], 2: synthetic(1, 30)[1]}
    with pytest.raises(ValueError, match=r"needs 40 .* has only 30.*size_factor"):
        mix(external(), syn, ratio=0.4, mode="replace", iteration=2, seed=0)
    # accumulate at 0.5 needs 100 per iteration; iteration 2 has 30
    with pytest.raises(ValueError, match=r"needs 100 synthetic samples from iteration 2.*only 30"):
        mix(external(), syn, ratio=0.5, mode="accumulate", iteration=2, seed=0)
    # a missing iteration counts as 0 available
    with pytest.raises(ValueError, match=r"only 0"):
        mix(external(), {}, ratio=0.1, mode="replace", iteration=1, seed=0)


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_ratio_validation(ratio):
    with pytest.raises(ValueError, match=r"`ratio`.*" + ("nan" if ratio != ratio else str(ratio))):
        mix(external(), synthetic(), ratio=ratio, mode="replace", iteration=1, seed=0)


def test_accumulate_rejects_ratio_one_and_unknown_mode():
    with pytest.raises(ValueError, match=r"`ratio` must be < 1 in mix.mode=accumulate"):
        mix(external(), synthetic(), ratio=1.0, mode="accumulate", iteration=1, seed=0)
    with pytest.raises(ValueError, match="mode"):
        mix(external(), synthetic(), ratio=0.2, mode="blend", iteration=1, seed=0)  # type: ignore[arg-type]


def test_a_short_supply_is_used_whole_and_recorded_never_silently_lower():
    """The mix stage's policy (on_short="use_all"): verification may keep fewer samples than `ratio`
    needs; every one is used, replace mode fills up with external data, and the counts say so."""
    syn = {1: synthetic(1, 12)[1]}
    rows, counts = mix(external(), syn, ratio=0.2, mode="replace", iteration=1, seed=0, on_short="use_all")
    assert len(rows) == counts.total == 100
    assert (counts.synthetic, counts.requested_synthetic, counts.external) == (12, 20, 88)
    assert counts.synthetic_fraction == 0.12 and counts.requested_ratio == 0.2
    rows, counts = mix(external(), {1: []}, ratio=0.3, mode="accumulate", iteration=1, seed=0, on_short="use_all")
    assert (counts.synthetic, counts.requested_synthetic, counts.total) == (0, 43, 100)


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.5, 1.0])
def test_replace_answers_exactly_the_prompts_it_removes(ratio):
    """Every prompt once: a replaced example's prompt comes back only as the model's answer to it."""
    ext = external()
    rows, counts = mix(ext, synthetic(), ratio=ratio, mode="replace", iteration=1, seed=4)
    assert sorted(r["prompt"] for r in rows) == sorted(e["prompt"] for e in ext)
    assert counts.repeated_prompts == 0
    for r in rows:
        if r["source"] == "synthetic":
            assert r["origin"]["source_id"] == "e" + r["prompt"][1:]


def test_drop_removes_the_same_examples_replace_answers_and_adds_nothing():
    ext, syn = external(), synthetic()
    replaced, rc = mix(ext, syn, ratio=0.3, mode="replace", iteration=2, seed=1)
    dropped, dc = mix(ext, syn, ratio=0.3, mode="drop", iteration=2, seed=1)
    assert {r["id"] for r in dropped} == {r["id"] for r in replaced if r["source"] == "external"}
    assert (dc.external, dc.synthetic, dc.total, dc.removed, dc.requested_synthetic) == (70, 0, 70, 30, 0)
    assert rc.removed == dc.removed == 30
    assert all(r["source"] == "external" for r in dropped)


def test_higher_ratios_replace_a_superset_of_lower_ratios_prompts():
    removed = []
    for ratio in (0.1, 0.2, 0.5):
        rows, _ = mix(external(), synthetic(), ratio=ratio, mode="replace", iteration=1, seed=2)
        removed.append({r["prompt"] for r in rows if r["source"] == "synthetic"})
    assert removed[0] < removed[1] < removed[2]


def test_replace_skips_prompts_whose_answers_were_filtered_out():
    """validate.filter: verified keeps answers to some prompts only: only those can be replaced."""
    syn = {1: [s for s in synthetic(1)[1] if int(s["id"].split("-")[1]) % 2 == 0]}  # answers to even prompts
    rows, counts = mix(external(), syn, ratio=0.3, mode="replace", iteration=1, seed=0)
    assert counts.synthetic == 30 and counts.repeated_prompts == 0 and counts.total == 100
    assert all(int(r["prompt"][1:]) % 2 == 0 for r in rows if r["source"] == "synthetic")
    with pytest.raises(ValueError, match=r"needs 60 .* has only 50"):
        mix(external(), syn, ratio=0.6, mode="replace", iteration=1, seed=0)
    rows, counts = mix(external(), syn, ratio=0.6, mode="replace", iteration=1, seed=0, on_short="use_all")
    assert (counts.synthetic, counts.external, counts.requested_synthetic) == (50, 50, 60)


def test_replace_with_instances_adds_new_prompts_in_place_of_removed_ones():
    rows, counts = mix(external(), instances(), ratio=0.2, mode="replace", iteration=1, seed=0)
    assert (counts.external, counts.synthetic, counts.removed, counts.repeated_prompts) == (80, 20, 20, 0)
    assert sum(r["prompt"].startswith("new1-") for r in rows) == 20

