"""The contract every task keeps, built-in or YAML: one suite over every registered task.

Each family's own rules (math's arithmetic, reading's spans, code's sandbox...) are tested in
tests/tasks/; what every stage relies on of any task is tested here, once: determinism, train/test
disjointness, the example schema, gold answers that score right and pass their own checks, a
trivial baseline below perfect, and the knowledge the rest of synthmix reads from the family.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from synthmix.params import parse_params
from synthmix.tasks import REGISTRY, TaskFamily, display_key

ROOT = Path(__file__).resolve().parents[1]
#: built-in families are checked on this many examples (code runs each gold body in the sandbox)
N_TRAIN, N_TEST = 300, 60

MC_YAML = """\
task: pets_mc
dataset_path: json
dataset_kwargs:
  data_files: {train: pets/train.jsonl, test: pets/test.jsonl}
training_split: train
test_split: test
output_type: multiple_choice
doc_to_text: "Which animal says {{sound}}?\\nAnswer:"
doc_to_choice: "{{options}}"
doc_to_target: "{{gold}}"
metric_list:
  - metric: acc
metadata: {synthmix: {group: grounded, order: 7}}
"""
ANIMALS = {"moo": "cow", "woof": "dog", "meow": "cat", "oink": "pig", "baa": "sheep", "quack": "duck"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, monkeypatch_module):
    """A project with the shipped example YAML task (configs/tasks/services) and a multiple-choice
    YAML task over a local JSONL, as a user lays them out; the tests run from its root."""
    root = tmp_path_factory.mktemp("contract")
    shutil.copytree(ROOT / "configs" / "tasks", root / "configs" / "tasks")
    pets = root / "configs" / "tasks" / "pets"
    pets.mkdir()
    (pets / "pets.yaml").write_text(MC_YAML.replace("pets/", "configs/tasks/pets/"))
    options = list(ANIMALS.values())
    rows = [{"sound": f"{sound}{'!' * k}", "options": str(options), "gold": options.index(animal)}
            for k in range(4) for sound, animal in ANIMALS.items()]
    for name, part in (("train", rows[:18]), ("test", rows[18:])):
        (pets / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    monkeypatch_module.chdir(root)
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


YAML_TASKS = ("services", "pets_mc")
ALL_TASKS = (*sorted(REGISTRY), *YAML_TASKS)


@pytest.fixture(scope="module")
def params(project):
    return parse_params({"task_paths": ["configs/tasks"], "tasks": list(ALL_TASKS)})


@pytest.fixture(scope="module")
def data(params):
    """task name -> (task, train, test) as prepare would write them (seed 0)."""
    out = {}
    for name in ALL_TASKS:
        task = params.task(name)
        if task.source == "yaml":
            loaded = task.load({"train": None, "test": None}, seed=0)
            out[name] = (task, loaded["train"].examples, loaded["test"].examples)
        else:
            out[name] = (task, task.build("train", N_TRAIN, 0), task.build("test", N_TEST, 0))
    return out


@pytest.fixture(params=ALL_TASKS)
def case(request, data):
    return data[request.param]


def test_every_task_is_checked_here():
    """A new built-in family joins this suite by registering (nothing to add here)."""
    assert set(REGISTRY) == {"commonsense", "math", "factual", "reading", "code"}
    assert set(ALL_TASKS) >= set(REGISTRY)


def test_build_is_deterministic(case):
    task, train, test = case
    if task.source == "yaml":
        again = task.load({"train": None, "test": None}, seed=0)
        assert (again["train"].examples, again["test"].examples) == (train, test)
        # a cap is a seeded sample, the same for the same seed
        assert task.load({"train": 5, "test": 3}, seed=1)["train"].examples == task.load({"train": 5, "test": 3}, seed=1)["train"].examples
    else:
        assert task.build("train", N_TRAIN, 0) == train and task.build("test", N_TEST, 0) == test
        assert task.build("train", N_TRAIN, 1) != train  # the seed draws the data


def test_train_and_test_share_no_prompt_nor_id(case):
    task, train, test = case
    assert not {ex["prompt"] for ex in train} & {ex["prompt"] for ex in test}
    ids = [ex["id"] for ex in train + test]
    assert len(set(ids)) == len(ids)
    assert all(ex["id"].startswith(f"{task.name}-") for ex in train + test)


def test_schema(case):
    task, train, test = case
    for ex in train + test:
        assert isinstance(ex["prompt"], str) and ex["prompt"]
        assert isinstance(ex["completion"], str) and ex["completion"].strip()
        json.dumps(ex)  # written as JSON lines by prepare
        if task.kind == "choice":
            assert task.choices(ex)[ex["label"]] == ex["completion"]


def test_gold_answers_score_right_and_pass_their_checks(case):
    task, train, test = case
    sample = train[:40] + test[:40]
    scored = task.score(sample, [task.stop(ex["completion"]) for ex in sample])
    assert all(s.correct == 1.0 for s in scored), [ex["id"] for ex, s in zip(sample, scored) if not s.correct][:5]
    assert all(task.extract(ex["completion"]) is not None for ex in sample)
    failing = [(ex["id"], k) for ex in sample for k, ok in task.checks(ex).items() if not ok]
    assert not failing, failing[:5]
    summary = task.summarize(sample, scored)
    assert summary[task.score_name] == 1.0


def test_a_wrong_answer_scores_wrong(case):
    task, train, test = case
    sample = test[:20]
    wrong = [task.stop(sample[(i + 1) % len(sample)]["completion"]) for i in range(len(sample))]
    scored = task.score(sample, wrong)
    assert sum(s.correct for s in scored) < len(sample)


def test_trivial_baseline_is_below_perfect(case):
    task, train, test = case
    baseline = task.trivial_baseline(train, test)
    assert isinstance(baseline["name"], str) and baseline["name"]
    assert 0.0 <= baseline["score"] < 1.0


def test_gold_lengths_are_well_formed(case):
    task, train, test = case
    bounds = task.length_bounds(train if task.source != "builtin" else ())
    for ex in train:
        for column in ("prompt", "completion"):
            lo, hi = bounds[column]
            assert lo <= len(ex[column]) <= hi, (task.name, column, len(ex[column]), bounds[column])


def test_the_family_says_what_the_rest_of_synthmix_needs(case, params):
    task, *_ = case
    assert task.kind in ("choice", "generate")
    assert isinstance(task.score_name, str) and task.score_name
    assert params.generation_budget(task) >= 1
    assert task.group in (None, "reasoning", "grounded")
    assert isinstance(display_key(task)[0], int)
    assert task.choice_reduction in ("mean", "sum")
    if task.source != "yaml":
        from synthmix.tasks.hub import FORMATS

        assert set(task.hub_formats) <= set(FORMATS)
        assert {spec["format"] for spec in task.hub_defaults.values()} <= set(task.hub_formats)


def test_instances_round_trip_where_the_family_reads_them(case):
    task, train, _ = case
    if task.source == "yaml":  # params validation refuses instances mode for YAML tasks
        assert task.parse_instance(task.render_instance(train[0])) is None
        return
    for ex in train[:20]:
        parsed = task.parse_instance(task.render_instance(ex))
        assert parsed is not None and parsed["prompt"] == ex["prompt"] and parsed["completion"] == ex["completion"]


def test_yaml_knowledge_comes_from_the_yaml(data):
    pets, services = data["pets_mc"][0], data["services"][0]
    assert (pets.kind, pets.score_name, pets.group, pets.order, pets.choice_reduction) == ("choice", "acc", "grounded", 7, "sum")
    assert (services.kind, services.score_name, services.group, services.max_new_tokens) == ("generate", "exact_match", "grounded", 8)
    assert sorted(["pets_mc", "math", "services", "commonsense"], key=lambda n: display_key(data[n][0])) == \
        ["commonsense", "math", "pets_mc", "services"]
