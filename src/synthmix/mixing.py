"""An iteration's training set: external (human-made) data mixed with synthetic data at `ratio`.

Two regimes (params.yaml `mix.mode`), with N = len(external):

- ``replace``: the training set keeps size N; ``round(ratio * N)`` of it are synthetic samples of
  *this* iteration, the other ``N - round(ratio * N)`` a seeded subset of the external data.
- ``accumulate``: all N external samples are kept, plus, from *every* iteration j = 1..iteration,
  ``round(ratio / (1 - ratio) * N)`` synthetic samples of iteration j. The per-iteration share is
  chosen so that iteration 1 has the same synthetic fraction as ``replace`` (ratio 0.2 adds 25%
  of N, i.e. 20% of the total); later iterations add as much again, so the synthetic fraction
  grows (iteration i: i*k / (N + i*k)). ``ratio`` must be < 1 here (1 would need infinitely
  many synthetic samples).

Iteration 0 (the base model's set) has no synthetic data: it is the external set. Rounding is
half-up (``floor(x + 0.5)``), not Python's banker's `round`. Each iteration j's synthetic draw is
seeded by (seed, j) alone, so in ``accumulate`` mode iteration i's synthetic part contains
iteration i-1's. The output is shuffled with ``random.Random(seed + iteration)``; with no
synthetic samples it is exactly the external list shuffled by that generator.
"""

from __future__ import annotations

import math
import random
import sys
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def per_iteration_count(
    n_external: int, ratio: float, mode: Literal["replace", "accumulate"]
) -> int:
    """Synthetic samples taken from one iteration's set (see the module docstring)."""
    if mode == "replace":
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
    mode: Literal["replace", "accumulate"],
    iteration: int,
    seed: int,
    on_short: Literal["error", "use_all"] = "error",
) -> tuple[list[Example], MixCounts]:
    """Build iteration `iteration`'s training set.

    `synthetic` maps iteration j -> iteration j's validated synthetic samples (keys above
    `iteration` are ignored). Every returned example is a copy carrying ``source`` ("external"
    | "synthetic") and ``origin_iteration`` (0 for external, j for synthetic from iteration j);
    the inputs are not modified.

    Raises ValueError for a `ratio` outside [0, 1] (or 1 in accumulate mode), an unknown `mode`,
    a negative `iteration`, or, with `on_short="error"`, when an iteration has fewer synthetic
    samples than needed. With ``"use_all"`` (the mix stage: verification may keep too few) every
    available sample is used instead, replace mode fills the rest with external data, and the
    counts record the requested ratio beside the achieved one.
    """
    if not (isinstance(ratio, (int, float)) and 0.0 <= ratio <= 1.0):
        raise ValueError(f"`ratio` must be in [0, 1], got {ratio!r}")
    if mode not in ("replace", "accumulate"):
        raise ValueError(f"mix mode must be 'replace' or 'accumulate', got {mode!r}")
    if mode == "accumulate" and ratio >= 1.0:
        raise ValueError(
            f"`ratio` must be < 1 in mix.mode=accumulate (the external data is kept whole), got {ratio!r}"
        )
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")

    n = len(external)
    k = per_iteration_count(n, ratio, mode) if iteration > 0 else 0
    if iteration == 0:
        sources: list[int] = []
    else:
        sources = [iteration] if mode == "replace" else list(range(1, iteration + 1))

    drawn: dict[int, list[Example]] = {}
    for j in sources:
        available = synthetic.get(j, [])
        if len(available) < k and on_short == "use_all":
            drawn[j] = list(available)
            continue
        if len(available) < k:
            raise ValueError(
                f"mix.mode={mode}, ratio={ratio}: iteration {iteration} needs {k} synthetic samples "
                f"from iteration {j} ({n} external), but iteration {j} has only {len(available)} "
                f"(after validation). Lower `ratio`, raise `generate.size_factor`, or set "
                f"validate.on_invalid=keep if samples were dropped."
            )
        drawn[j] = _subset(available, k, random.Random(f"synthmix-mix-synthetic:{seed}:{j}"))

    n_syn = sum(len(v) for v in drawn.values())
    if mode == "replace" and k > 0:
        kept = _subset(external, n - n_syn, random.Random(f"synthmix-mix-external:{seed}:{iteration}"))
    else:
        kept = list(external)

    out = [_tag(e, "external", 0) for e in kept]
    for j, samples in drawn.items():
        out.extend(_tag(s, "synthetic", j) for s in samples)
    random.Random(seed + iteration).shuffle(out)

    counts = MixCounts(
        external=len(kept),
        synthetic=n_syn,
        total=len(out),
        synthetic_fraction=n_syn / len(out) if out else 0.0,
        synthetic_by_iteration={j: len(v) for j, v in drawn.items()},
        requested_synthetic=k * len(sources),
        requested_ratio=float(ratio) if iteration > 0 else 0.0,
    )
    return out, counts


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
        if iteration > 0:
            if params.mix.mode == "accumulate":
                synthetic = _carried_synthetic(read_jsonl(paths.mixed(iteration - 1, name)))
            synthetic[iteration] = read_jsonl(paths.synthetic_valid(iteration, name))
        rows, mixed = mix(external, synthetic, ratio=params.ratio, mode=params.mix.mode,
                          iteration=iteration, seed=params.seed, on_short="use_all")
        write_jsonl(paths.mixed(iteration, name), rows)
        counts[name] = mixed.to_dict()
        print(f"iter{iteration}/{name}: {mixed.external} external + {mixed.synthetic} synthetic "
              f"({mixed.synthetic_fraction:.1%}, {params.mix.mode})")
        if mixed.synthetic < mixed.requested_synthetic:
            print(f"iter{iteration}/{name}: SHORT OF SYNTHETIC DATA: ratio {params.ratio} needs "
                  f"{mixed.requested_synthetic} synthetic samples, validation kept {mixed.synthetic}; the set is "
                  f"{mixed.synthetic_fraction:.1%} synthetic (metrics/mix/iter{iteration}.json: synthetic_fraction "
                  "vs requested_ratio). Raise generate.size_factor, or relax validate.filter / on_invalid",
                  file=sys.stderr)
    write_json(paths.mix_counts(iteration), counts)
