"""An iteration's training set: external (human-made) data mixed with synthetic data at `ratio`.

Three regimes (params.yaml `mix.mode`), with N = len(external) and k = ``round(ratio * N)``:

- ``replace``: the training set keeps size N. k external examples are *replaced*: each by this
  iteration's synthetic answer to that very prompt (answers mode: the sample whose
  ``origin.source_id`` is the example's id), so every prompt appears exactly once and the only
  difference from the external set is k answers written by the model. Instances mode's samples
  answer no external prompt: there the k removed examples and the k added samples are drawn
  independently (the samples are new prompts).
- ``drop``: the control for ``replace``: the same k examples removed, nothing added (N - k
  examples). Replace minus drop separates "wrong labels" from "fewer correct labels".
- ``accumulate``: all N external samples are kept, plus, from *every* iteration j = 1..iteration,
  ``round(ratio / (1 - ratio) * N)`` synthetic samples of iteration j. The per-iteration share is
  chosen so that iteration 1 has the same synthetic fraction as ``replace`` (ratio 0.2 adds 25%
  of N, i.e. 20% of the total); later iterations add as much again, so the synthetic fraction
  grows (iteration i: i*k / (N + i*k)). ``ratio`` must be < 1 here (1 would need infinitely
  many synthetic samples).

Which examples are replaced (or dropped) is a seeded order of the external prompts that have a
synthetic answer, cut at k: one order per (seed, iteration), so a higher ratio replaces a superset
of a lower ratio's prompts (paired comparisons across ratios), and replace and drop remove the same
examples. Iteration 0 (the base model's set) has no synthetic data: it is the external set.
Rounding is half-up (``floor(x + 0.5)``), not Python's banker's `round`. In ``accumulate`` mode each
iteration j's synthetic draw is seeded by (seed, j) alone, so iteration i's synthetic part contains
iteration i-1's. The output is shuffled with ``random.Random(seed + iteration)``; with no synthetic
samples it is exactly the external list shuffled by that generator.
"""

from __future__ import annotations

import math
import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

from synthmix import paths
from synthmix.params import Params
from synthmix.records import read_jsonl, write_json, write_jsonl

Example = dict[str, Any]


@dataclass
class MixCounts:
    """What went into a training set."""

    external: int
    synthetic: int
    total: int
    #: synthetic / total (0.0 for an empty set)
    synthetic_fraction: float
    #: synthetic samples taken from each iteration j
    synthetic_by_iteration: dict[int, int]
    #: synthetic samples `ratio` asked for (more than `synthetic` when too few were available)
    requested_synthetic: int = 0
    #: the ratio asked for (`synthetic_fraction` is the one achieved)
    requested_ratio: float = 0.0
    #: external examples taken out (replace: each for a synthetic answer; drop: for nothing)
    removed: int = 0
    #: prompts that occur more than once in the set (replace mode in answers mode: 0)
    repeated_prompts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


Mode = Literal["replace", "drop", "accumulate"]
MODES: tuple[str, ...] = ("replace", "drop", "accumulate")


def per_iteration_count(n_external: int, ratio: float, mode: Mode) -> int:
    """Synthetic samples taken from one iteration's set, or (drop) examples removed: the module docstring."""
    if mode in ("replace", "drop"):
        return _round(ratio * n_external)
    return _round(ratio / (1.0 - ratio) * n_external)


def _subset(items: list[Example], k: int, rng: random.Random) -> list[Example]:
    """`k` items chosen by `rng`, in their input order."""
    return [items[i] for i in sorted(rng.sample(range(len(items)), k))]


def _tag(example: Example, source: str, origin_iteration: int) -> Example:
    return {**example, "source": source, "origin_iteration": origin_iteration}


def mix(
    external: list[Example],
    synthetic: dict[int, list[Example]],
    *,
    ratio: float,
    mode: Mode,
    iteration: int,
    seed: int,
    on_short: Literal["error", "use_all"] = "error",
) -> tuple[list[Example], MixCounts]:
    """Build iteration `iteration`'s training set.

    `synthetic` maps iteration j -> iteration j's validated synthetic samples (keys above
    `iteration` are ignored; drop mode reads them only to remove the examples replace would). Every
    returned example is a copy carrying ``source`` ("external" | "synthetic") and
    ``origin_iteration`` (0 for external, j for synthetic from iteration j); the inputs are not
    modified.

    Raises ValueError for a `ratio` outside [0, 1] (or 1 in accumulate mode), an unknown `mode`,
    a negative `iteration`, or, with `on_short="error"`, when an iteration has fewer synthetic
    samples than needed. With ``"use_all"`` (the mix stage: verification may keep too few) every
    available sample is used instead, replace mode keeps the external examples it cannot replace,
    and the counts record the requested ratio beside the achieved one.
    """
    if not (isinstance(ratio, (int, float)) and 0.0 <= ratio <= 1.0):
        raise ValueError(f"`ratio` must be in [0, 1], got {ratio!r}")
    if mode not in MODES:
        raise ValueError(f"mix mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "accumulate" and ratio >= 1.0:
        raise ValueError(
            f"`ratio` must be < 1 in mix.mode=accumulate (the external data is kept whole), got {ratio!r}"
        )
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")

    n = len(external)
    k = per_iteration_count(n, ratio, mode) if iteration > 0 else 0
    if mode == "accumulate":
        kept, drawn = list(external), _accumulated(synthetic, n, k, ratio, iteration, seed, on_short)
        removed = 0
    else:
        kept, drawn = _replaced(external, synthetic.get(iteration, []), n, k, ratio, mode, iteration, seed, on_short)
        removed = n - len(kept)
        if mode == "drop":
            drawn = {}

    out = [_tag(e, "external", 0) for e in kept]
    for j, samples in drawn.items():
        out.extend(_tag(s, "synthetic", j) for s in samples)
    random.Random(seed + iteration).shuffle(out)

    n_syn = sum(len(v) for v in drawn.values())
    prompts = Counter(row.get("prompt") for row in out)
    counts = MixCounts(
        external=len(kept),
        synthetic=n_syn,
        total=len(out),
        synthetic_fraction=n_syn / len(out) if out else 0.0,
        synthetic_by_iteration={j: len(v) for j, v in drawn.items()},
        requested_synthetic=0 if mode == "drop" or iteration == 0 else k * (iteration if mode == "accumulate" else 1),
        requested_ratio=float(ratio) if iteration > 0 else 0.0,
        removed=removed,
        repeated_prompts=sum(1 for c in prompts.values() if c > 1),
    )
    return out, counts


def _short(mode: str, ratio: float, iteration: int, j: int, k: int, n: int, available: int) -> ValueError:
    return ValueError(
        f"mix.mode={mode}, ratio={ratio}: iteration {iteration} needs {k} synthetic samples "
        f"from iteration {j} ({n} external), but iteration {j} has only {available} "
        f"(after validation). Lower `ratio`, raise `generate.size_factor`, or set "
        f"validate.on_invalid=keep if samples were dropped."
    )


def _replaced(
    external: list[Example], samples: list[Example], n: int, k: int, ratio: float, mode: str,
    iteration: int, seed: int, on_short: str,
) -> tuple[list[Example], dict[int, list[Example]]]:
    """(kept external examples, {iteration: the synthetic samples replacing the others})."""
    if k == 0:
        return list(external), ({iteration: []} if iteration > 0 else {})
    if len(samples) < k and on_short != "use_all":
        raise _short(mode, ratio, iteration, iteration, k, n, len(samples))
    order = list(range(n))
    random.Random(f"synthmix-mix-replace:{seed}:{iteration}").shuffle(order)
    by_source: dict[str, Example] = {}
    for sample in samples:  # the first sample of each source prompt (size_factor > 1 samples it again)
        origin = sample.get("origin")
        source_id = origin.get("source_id") if isinstance(origin, dict) else None
        if source_id is not None:
            by_source.setdefault(source_id, sample)
    if by_source:  # answers mode: each replaced prompt by the model's answer to it
        chosen = [i for i in order if external[i]["id"] in by_source][:k]
        replacements = [by_source[external[i]["id"]] for i in chosen]
    else:  # instances mode: new prompts; which are removed and which are added are independent draws
        m = min(k, len(samples))
        chosen = order[:m]
        replacements = _subset(samples, m, random.Random(f"synthmix-mix-synthetic:{seed}:{iteration}"))
    if len(chosen) < k and on_short != "use_all":
        raise _short(mode, ratio, iteration, iteration, k, n, len(chosen))
    gone = set(chosen)
    return [e for i, e in enumerate(external) if i not in gone], {iteration: replacements}


def _accumulated(
    synthetic: dict[int, list[Example]], n: int, k: int, ratio: float, iteration: int, seed: int, on_short: str
) -> dict[int, list[Example]]:
    """{j: iteration j's synthetic samples} for j = 1..iteration (each draw seeded by (seed, j))."""
    drawn: dict[int, list[Example]] = {}
    for j in range(1, iteration + 1):
        available = synthetic.get(j, [])
        if len(available) < k:
            if on_short != "use_all":
                raise _short("accumulate", ratio, iteration, j, k, n, len(available))
            drawn[j] = list(available)
            continue
        drawn[j] = _subset(available, k, random.Random(f"synthmix-mix-synthetic:{seed}:{j}"))
    return drawn


def _carried_synthetic(previous_mix: list[Example]) -> dict[int, list[Example]]:
    """Synthetic samples of earlier iterations, as the previous iteration's mix holds them."""
    by_iteration: dict[int, list[Example]] = {}
    for row in previous_mix:
        if row.get("source") == "synthetic":
            by_iteration.setdefault(row["origin_iteration"], []).append(row)
    return by_iteration


def run(params: Params, iteration: int) -> None:
    """Stage `mix`: write data/mixed/iter<N>/<task>.jsonl and the exact counts."""
    counts = {}
    for name in params.tasks:
        external = read_jsonl(paths.external(name, "train"))
        synthetic: dict[int, list[Example]] = {}
        if iteration > 0:  # drop mode reads this iteration's samples to remove what replace would
            if params.mix.mode == "accumulate":
                synthetic = _carried_synthetic(read_jsonl(paths.mixed(iteration - 1, name)))
            synthetic[iteration] = read_jsonl(paths.synthetic_valid(iteration, name))
        rows, mixed = mix(external, synthetic, ratio=params.ratio, mode=params.mix.mode,
                          iteration=iteration, seed=params.seed, on_short="use_all")
        write_jsonl(paths.mixed(iteration, name), rows)
        counts[name] = mixed.to_dict()
        print(f"iter{iteration}/{name}: {mixed.external} external + {mixed.synthetic} synthetic "
              f"({mixed.synthetic_fraction:.1%}, {params.mix.mode}; {mixed.removed} external removed)")
        if mixed.synthetic < mixed.requested_synthetic:
            print(f"iter{iteration}/{name}: SHORT OF SYNTHETIC DATA: ratio {params.ratio} needs "
                  f"{mixed.requested_synthetic} synthetic samples, validation kept {mixed.synthetic}; the set is "
                  f"{mixed.synthetic_fraction:.1%} synthetic (metrics/mix/iter{iteration}.json: synthetic_fraction "
                  "vs requested_ratio). Raise generate.size_factor, or relax validate.filter / on_invalid",
                  file=sys.stderr)
    write_json(paths.mix_counts(iteration), counts)
