"""Quality control of a synthetic set, run by the validate stage: verification, dedup, data cards.

- **Verification** (`verify`): is a synthetic sample right?
  - answers mode: the task's own scorer against the gold answer of the external prompt it
    answers (STaR's filter); for code, the source problem's tests in the sandbox
    (`synthmix.sandbox.check_function`: pass@1's judge);
  - instances mode: the sample parsed into an example that its family's own check finds right
    (`TaskFamily.verify_instances`): math's arithmetic chain recomputes from the question's numbers
    to its `####` answer, code's body passes the asserts the family writes for its docstring, a
    reading answer is a span of its passage (or "unanswerable").
  Its mean is the set's `synthetic_accuracy` (metrics/validation/iter<N>.json), always measured;
  `validate.filter: verified` also keeps only the verified samples (`none`, the paper's setting,
  keeps them all).
- **Near-duplicate removal** (`dedup`, `validate.dedup`: a Jaccard threshold, 0 = off): MinHash
  over word 3-gram shingles of prompt + completion with datasketch's LSH index; the first of a
  group is kept.
- **A data card** per set (`data_card`): Markdown beside the validated data (DVC-tracked with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthmix.tasks.base import Example, TaskFamily

#: MinHash permutations: the Jaccard estimate's standard error is ~1/sqrt(128) = 0.09
NUM_PERM = 128


def verify(task: TaskFamily, samples: list[Example], external: list[Example], mode: str) -> list[bool]:
    """Per sample: verified (see the module docstring). `external`: the task's external train set."""
    if not samples:
        return []
    if mode == "instances":
        parsed = [i for i, s in enumerate(samples) if (s.get("origin") or {}).get("parsed")]
        verified = [False] * len(samples)  # an example that could not be read back is not verified
        for i, ok in zip(parsed, task.verify_instances([samples[i] for i in parsed])):
            verified[i] = bool(ok)
        return verified
    by_id = {ex["id"]: ex for ex in external}
    gold, texts, rows = [], [], []
    for i, sample in enumerate(samples):
        source = by_id.get((sample.get("origin") or {}).get("source_id"))
        if source is not None:
            gold.append(source)
            texts.append(sample.get("completion") or "")
            rows.append(i)
    verified = [False] * len(samples)  # a sample whose source prompt is unknown can't be verified
    for i, scored in zip(rows, task.score(gold, texts)):
        verified[i] = scored.correct == 1.0
    return verified


def _shingles(text: str, n: int = 3) -> set[bytes]:
    words = text.split()
    if len(words) < n:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def dedup(samples: list[Example], threshold: float, seed: int = 0) -> tuple[list[Example], list[str]]:
    """(the samples without near-duplicates of an earlier one, the removed ids): Jaccard similarity
    of word 3-gram shingles (prompt + completion) at least `threshold`, estimated by MinHash LSH."""
    if not threshold or not samples:
        return list(samples), []
    from datasketch import MinHash, MinHashLSH

    index = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    kept, removed = [], []
    for k, sample in enumerate(samples):
        text = f"{sample.get('prompt') or ''}\n{sample.get('completion') or ''}"
        sketch = MinHash(num_perm=NUM_PERM, seed=seed)
        sketch.update_batch(list(_shingles(text)))
        if index.query(sketch):
            removed.append(str(sample.get("id", k)))
            continue
        index.insert(f"s{k}", sketch)
        kept.append(sample)
    return kept, removed


def data_card(task: str, iteration: int, meta: dict[str, Any], settings: dict[str, Any], counts: dict[str, Any],
              expectations: list[dict[str, Any]]) -> str:
    """The Markdown data card of one task's synthetic set of one iteration."""
    model = (meta.get("tasks") or {}).get(task) or {}
    failed = [e["name"] for e in expectations if not e.get("success")]
    lines = [
        f"# Synthetic data card: {task}, iteration {iteration}",
        "",
        "Written by `synthmix validate`; it describes the validated set beside it.",
        "",
        "## Where it came from",
        "",
        f"- generating model: `{model.get('model')}` (sha256 `{model.get('model_sha256')}`), "
        f"iteration {meta.get('from_iteration')}",
        f"- sampling: mode {meta.get('mode')}, temperature {meta.get('temperature')}, top-p {meta.get('top_p')}, "
        f"max new tokens {(meta.get('max_new_tokens') or {}).get(task)}, seed {meta.get('seed')}",
        "",
        "## Quality control",
        "",
        f"- filter: `{settings['filter']}`; near-duplicate removal: "
        + (f"Jaccard >= {settings['dedup']} (MinHash, word 3-grams)" if settings["dedup"] else "off")
        + f"; malformed samples: `{settings['on_invalid']}`",
        f"- synthetic accuracy (verified / generated): **{counts['synthetic_accuracy']:.3f}** "
        f"({counts['verified']} of {counts['samples']})",
        f"- malformed (great-expectations row checks): {counts['malformed']}; exact duplicates: {counts['duplicates']}; "
        f"near-duplicates removed: {counts['dedup_removed']}",
        f"- kept: **{counts['kept']}** of {counts['samples']} ({counts['kept_rate']:.1%})",
        f"- rejection sampling: up to {model.get('max_attempts', 1)} draw(s) per prompt"
        + (f"; {counts['draws_per_kept']:.2f} draws per kept sample" if "draws_per_kept" in counts else ""),
        "",
        "## Validation suite",
        "",
        f"- {len(expectations) - len(failed)} of {len(expectations)} expectations met"
        + (f"; failed: {', '.join(failed)}" if failed else ""),
        "",
        "| expectation | met | unexpected |",
        "|---|---|---|",
    ]
    for e in expectations:
        lines.append(f"| {e['name']} | {'yes' if e.get('success') else 'no'} | {e.get('unexpected_count') or 0} |")
    return "\n".join(lines) + "\n"
