"""Quality control through the real stages: verification (synthetic accuracy, `validate.filter:
verified`), near-duplicate removal, data cards, and a mix that records the ratio it achieved."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from dvc_repo import TINY, make_repo, sh

from synthmix import quality
from synthmix.sandbox import check_function
from synthmix.tasks.code import context, solution

pytestmark = pytest.mark.slow

# commonsense: a tiny model's sampled answer names the right option now and then, so verification,
# filtering and redraws have right and wrong samples to tell apart; code: a tiny model writes no
# passing body, so `planted` puts gold bodies into its set (they must pass the real sandbox)
TASKS = ["commonsense", "code"]
PLANTED = 8


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A repository where iteration 1's synthetic data has been generated (and validated once)."""
    # 24 epochs (144 steps of 8): enough for the tiny model to name the right option now and then
    # (4 of 48 at one draw, measured), so redraws have wrong answers to replace and right ones to
    # find. At 8 epochs it named one: answers are words now (" kitchen"), not a letter guessed 1 in 5
    repo = make_repo(tmp_path_factory.mktemp("quality"), {
        **TINY, "tasks": TASKS, "iterations": {"iter1": {"id": 1, "prev": 0}},
        "train": {**TINY["train"], "epochs": 24, "batch_size": 8},
    })
    sh(repo, "dvc", "repro", "generate@iter1")
    # a code model that got the first PLANTED problems right: their gold bodies, as the model's answers
    raw_path = repo / "data/synthetic/raw/iter1/code.jsonl"
    gold = {ex["id"]: ex for ex in _jsonl(repo / "data/external/code/train.jsonl")}
    rows = _jsonl(raw_path)
    for row in rows[:PLANTED]:
        row["completion"] = gold[row["origin"]["source_id"]]["completion"]
    raw_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sh(repo, "synthmix", "validate", "--iteration", "1")
    return repo


def _set(repo: Path, **changes) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in changes.items():
        section, name = key.split("__")
        params[section][name] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _right(task: str, sample: dict, gold: dict) -> bool:
    """Checked here without synthmix.quality: commonsense's answer, code's tests in the judge."""
    if task == "commonsense":
        # the family's documented rule: the first line, stripped, is the gold option's text (any case)
        answer = sample["completion"].strip().split("\n", 1)[0].strip()
        return answer.lower() == gold["choices"][gold["label"]].lower()
    lines = []
    for line in sample["completion"].split("\n"):
        if line.strip() and not line[0].isspace():
            break
        lines.append(line)
    body = "\n".join(lines)
    return bool(body.strip()) and check_function(
        solution(gold["prompt"], body), gold["entry_point"], gold["tests"], context=context(gold["prompt"]), strict=True,
    ).passed


def test_synthetic_accuracy_is_measured_without_filtering(generated):
    metrics = json.loads((generated / "metrics/validation/iter1.json").read_text())
    for task in TASKS:
        raw = _jsonl(generated / f"data/synthetic/raw/iter1/{task}.jsonl")
        gold = {ex["id"]: ex for ex in _jsonl(generated / f"data/external/{task}/train.jsonl")}
        right = sum(_right(task, s, gold[s["origin"]["source_id"]]) for s in raw)
        assert metrics[task]["verified"] == right, task
        assert 0 < right < len(raw), (task, right)  # right and wrong samples to tell apart
        assert metrics[task]["synthetic_accuracy"] == pytest.approx(right / len(raw))
        assert metrics[task]["kept"] == len(raw)  # filter none: the paper's setting keeps everything
    code = _jsonl(generated / "data/synthetic/raw/iter1/code.jsonl")
    gold = {ex["id"]: ex for ex in _jsonl(generated / "data/external/code/train.jsonl")}
    assert all(_right("code", s, gold[s["origin"]["source_id"]]) for s in code[:PLANTED])


def test_verified_filter_keeps_only_right_samples_and_the_mix_records_the_achieved_ratio(generated, tmp_path):
    repo = Path(shutil.copytree(generated, tmp_path / "study", symlinks=True))
    _set(repo, validate__filter="verified")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ratio"] = 1.0  # asks for every training example to be synthetic: more than verification keeps
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "synthmix", "validate", "--iteration", "1")
    out = sh(repo, "synthmix", "mix", "--iteration", "1")
    counts = json.loads((repo / "metrics/mix/iter1.json").read_text())
    validation = json.loads((repo / "metrics/validation/iter1.json").read_text())
    for task in TASKS:
        gold = {ex["id"]: ex for ex in _jsonl(repo / f"data/external/{task}/train.jsonl")}
        kept = _jsonl(repo / f"data/synthetic/validated/iter1/{task}.jsonl")
        assert len(kept) == validation[task]["kept"] == validation[task]["verified"] > 0
        mixed = [r for r in _jsonl(repo / f"data/mixed/iter1/{task}.jsonl") if r["source"] == "synthetic"]
        assert len(mixed) == len(kept)
        assert all(_right(task, s, gold[s["origin"]["source_id"]]) for s in mixed), task  # every one right
        assert counts[task]["requested_synthetic"] == 48 and counts[task]["synthetic"] == len(kept) < 48
        assert counts[task]["requested_ratio"] == 1.0 and counts[task]["synthetic_fraction"] == len(kept) / 48
        assert f"iter1/{task}: SHORT OF SYNTHETIC DATA: ratio 1.0 needs 48 synthetic samples" in out.stderr


def test_dedup_removes_planted_near_duplicates_and_keeps_their_originals(generated, tmp_path):
    repo = Path(shutil.copytree(generated, tmp_path / "study", symlinks=True))
    raw_path = repo / "data/synthetic/raw/iter1/commonsense.jsonl"
    raw = _jsonl(raw_path)
    planted = []
    for k, original in enumerate(raw[:3]):
        copy = {**original, "id": f"planted-{k}", "completion": original["completion"] + " ."}
        planted.append(copy["id"])
        raw.append(copy)
    raw_path.write_text("".join(json.dumps(r) + "\n" for r in raw))
    _set(repo, validate__dedup=0.8)
    sh(repo, "synthmix", "validate", "--iteration", "1")
    report = json.loads((repo / "data/synthetic/validated/iter1/report.json").read_text())
    removed = set(report["commonsense"]["near_duplicate_ids"])
    kept = {s["id"] for s in _jsonl(repo / "data/synthetic/validated/iter1/commonsense.jsonl")}
    assert set(planted) <= removed and not set(planted) & kept
    assert {s["id"] for s in raw[:3]} <= kept  # the first of each group stays
    metrics = json.loads((repo / "metrics/validation/iter1.json").read_text())
    assert metrics["commonsense"]["dedup_removed"] == len(removed) and metrics["commonsense"]["kept"] == len(kept)


def test_dedup_keeps_distinct_samples():
    samples = [{"id": str(i), "prompt": f"Q: what is {i} plus {i + 1}?", "completion": f" {i} plus {i + 1} is {2 * i + 1}"}
               for i in range(200)]
    kept, removed = quality.dedup(samples, 0.8)
    assert removed == [] and len(kept) == 200
    twin = {**samples[5], "id": "twin"}
    assert quality.dedup(samples + [twin], 0.8)[1] == ["twin"]
    assert quality.dedup(samples + [twin], 0.0)[1] == []  # 0: off


def test_the_data_card_describes_the_set_beside_it(generated):
    meta = json.loads((generated / "data/synthetic/raw/iter1/meta.json").read_text())
    metrics = json.loads((generated / "metrics/validation/iter1.json").read_text())
    for task in TASKS:
        card = (generated / f"data/synthetic/validated/iter1/{task}.card.md").read_text()
        kept = _jsonl(generated / f"data/synthetic/validated/iter1/{task}.jsonl")
        assert f"# Synthetic data card: {task}, iteration 1" in card
        assert meta["tasks"][task]["model_sha256"] in card
        assert f"temperature {meta['temperature']}, top-p {meta['top_p']}" in card and f"seed {meta['seed']}" in card
        assert f"kept: **{len(kept)}** of {metrics[task]['samples']}" in card
        assert f"**{metrics[task]['synthetic_accuracy']:.3f}** ({metrics[task]['verified']} of" in card
        assert "filter: `none`" in card and "near-duplicate removal: off" in card
    # DVC tracks it with the validated set: the card lies in the validate stage's output folder
    assert "- data/synthetic/validated/iter${item.id}" in (generated / "dvc.yaml").read_text()


def test_rejection_sampling_redraws_failures_and_reports_the_cost(generated, tmp_path):
    repo = Path(shutil.copytree(generated, tmp_path / "study", symlinks=True))
    before = {t: _jsonl(repo / f"data/synthetic/raw/iter1/{t}.jsonl") for t in TASKS}
    single = json.loads((repo / "metrics/validation/iter1.json").read_text())
    _set(repo, generate__max_attempts=3, validate__filter="verified")
    sh(repo, "synthmix", "generate", "--iteration", "1")
    sh(repo, "synthmix", "validate", "--iteration", "1")
    meta = json.loads((repo / "data/synthetic/raw/iter1/meta.json").read_text())
    metrics = json.loads((repo / "metrics/validation/iter1.json").read_text())
    for task in TASKS:
        gold = {ex["id"]: ex for ex in _jsonl(repo / f"data/external/{task}/train.jsonl")}
        rows = _jsonl(repo / f"data/synthetic/raw/iter1/{task}.jsonl")
        # (code's planted gold bodies are gone: this generate drew the model's own again)
        for old, new in zip(before[task] if task == "commonsense" else [], rows):
            right = _right(task, new, gold[new["origin"]["source_id"]])
            assert 1 <= new["origin"]["attempts"] <= 3
            if new["origin"]["attempts"] < 3:
                assert right  # accepted at that draw: it passed
            if _right(task, old, gold[old["origin"]["source_id"]]):
                # the first draw is the single-draw run's own: a right one is kept, not redrawn
                assert new["origin"]["attempts"] == 1 and new["completion"] == old["completion"]
        if task == "commonsense":  # redraws found more right answers than one draw did
            assert metrics[task]["verified"] > single[task]["verified"]
        assert all(1 <= r["origin"]["attempts"] <= 3 for r in rows)
        assert meta["tasks"][task]["draws"] == sum(r["origin"]["attempts"] for r in rows)
        assert metrics[task]["draws_per_kept"] == pytest.approx(meta["tasks"][task]["draws"] / max(metrics[task]["kept"], 1))
    card = (repo / "data/synthetic/validated/iter1/commonsense.card.md").read_text()
    assert "up to 3 draw(s) per prompt" in card and "draws per kept sample" in card


# ----- instances mode: each family's own check ------------------------------------------------------

def _instances(task, rows):
    """Whole written examples as generate writes them in instances mode (parsed, origin.parsed)."""
    out = []
    for row in rows:
        parsed = task.parse_instance(task.render_instance(row))
        out.append({**(parsed or {"prompt": row["prompt"], "completion": row["completion"]}),
                    "origin": {"parsed": parsed is not None}})
    return out


def test_math_instances_are_verified_by_recomputing_the_chain():
    from synthmix.tasks import get_task

    math = get_task("math")
    rows = math.build("train", 30, 0)
    right = _instances(math, rows)
    assert quality.verify(math, right, [], "instances") == [True] * 30
    first = right[0]
    steps = re.findall(r"(\d+) ([+-]) (\d+) = (\d+)\.", first["completion"])
    a, op, b, c = steps[0]
    wrong_step = {**first, "completion": first["completion"].replace(f"{a} {op} {b} = {c}.", f"{a} {op} {b} = {int(c) + 1}.", 1)}
    wrong_answer = {**first, "completion": re.sub(r"#### -?\d+", f"#### {int(steps[-1][3]) + 1}", first["completion"])}
    other_numbers = {**first, "prompt": re.sub(r"\d+", lambda m: str(int(m.group()) + 1), first["prompt"], count=1)}
    unparsed = {**first, "origin": {"parsed": False}}
    # each is well-formed (the validity checks pass) yet wrong, so only the recomputation catches it
    assert all(all(math.checks(s).values()) for s in (wrong_step, wrong_answer, other_numbers))
    assert quality.verify(math, [wrong_step, wrong_answer, other_numbers, unparsed], [], "instances") == [False] * 4


def test_code_instances_are_verified_by_the_asserts_the_family_writes_for_their_docstring():
    from synthmix.tasks import get_task

    code = get_task("code")
    rows = code.build("train", 12, 0)
    right = _instances(code, rows)
    assert quality.verify(code, right, [], "instances") == [True] * 12
    wrong_body = [{**s, "completion": "    return None\n"} for s in right[:3]]
    unknown_doc = [{**right[0], "prompt": 'def cube(x):\n    """Return x cubed."""\n', "completion": "    return x ** 3\n"}]
    # a docstring whose parameter is not the signature's asks for a function nobody wrote
    mismatch = [{**right[0], "prompt": right[0]["prompt"].replace(f"({right[0]['prompt'].split('(')[1].split(')')[0]})", "(zz)", 1)}]
    assert quality.verify(code, wrong_body + unknown_doc + mismatch, [], "instances") == [False] * 5


def test_reading_instances_are_verified_as_spans_of_their_passage():
    from synthmix.tasks import get_task

    reading = get_task("reading")
    rows = [r for r in reading.build("train", 40, 0) if r["answers"]][:5]
    right = _instances(reading, rows)
    assert quality.verify(reading, right, [], "instances") == [True] * 5
    invented = [{**s, "completion": " a purple submarine"} for s in right]
    assert quality.verify(reading, invented, [], "instances") == [False] * 5
