"""YAML tasks: lm-eval's keys with lm-eval's meanings, and clear errors for everything else.

Reference implementations come from lm-evaluation-harness itself (its ConfigurableTask, RegexFilter,
exact_match and f1 aggregation), so "lm-eval's meaning" is checked, not restated.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest
import yaml

from synthmix.params import ParamsError, parse_params
from synthmix.tasks.yaml_spec import Filter
from synthmix.tasks.yaml_task import binary_f1, exact_match

lm_eval = pytest.importorskip("lm_eval")

QA = {
    "task": "qa", "dataset_path": "json",
    "dataset_kwargs": {"data_files": {"train": "data/train.jsonl", "test": "data/test.jsonl"}},
    "training_split": "train", "test_split": "test",
    "doc_to_text": "Q: {{question}}\nA:", "doc_to_target": "answer",
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root with a QA dataset under data/ and task YAMLs under tasks/."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    rows = [{"question": f"what is {i} and {i}?", "answer": str(2 * i), "label": i % 2,
             "options": ["no", "yes"]} for i in range(30)]
    (tmp_path / "data/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:24]))
    (tmp_path / "data/test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[24:]))
    (tmp_path / "tasks").mkdir()
    return tmp_path


def write(project: Path, spec: dict, name: str = "qa.yaml") -> Path:
    path = project / "tasks" / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def params_of(tasks=("qa",), **extra):
    return parse_params({"task_paths": ["tasks"], "tasks": list(tasks), **extra})


# ----- errors that name the file and the key ---------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"process_docs": "x"}, "qa.yaml: process_docs: not supported by synthmix"),
    ({"output_type": "loglikelihood"}, "qa.yaml: output_type: 'loglikelihood' is not supported"),
    ({"num_fewshot": 5}, "qa.yaml: num_fewshot: 5 is not supported (synthmix fine-tunes on training_split"),
    ({"repeats": 4}, "qa.yaml: repeats: 4 is not supported"),
    ({"training_split": None}, "qa.yaml: training_split: required (synthmix fine-tunes on it)"),
    ({"test_split": "train"}, "qa.yaml: test_split: 'train' is also training_split"),
    ({"metric_list": [{"metric": "bleu"}]}, "qa.yaml: metric_list[0].metric: 'bleu' is not supported"),
    ({"metric_list": [{"metric": "acc"}]}, "qa.yaml: metric_list[0].metric: acc is a multiple_choice metric"),
    ({"metric_list": [{"metric": "exact_match", "ignore_spaces": True}]},
     "qa.yaml: metric_list[0].ignore_spaces: not an argument of exact_match"),
    ({"metric_list": [{"metric": "exact_match", "aggregation": "median"}]}, "metric_list[0].aggregation: only 'mean'"),
    ({"generation_kwargs": {"until": ["\n"], "do_sample": True}}, "qa.yaml: generation_kwargs.do_sample: evaluation is greedy"),
    ({"generation_kwargs": {"top_k": 5}}, "qa.yaml: generation_kwargs.top_k: not supported"),
    ({"generation_kwargs": {"max_gen_toks": 0}}, "generation_kwargs.max_gen_toks: must be a positive integer"),
    ({"filter_list": [{"name": "x", "filter": [{"function": "majority_vote"}, {"function": "take_first"}]}]},
     "qa.yaml: filter_list[0].filter[0]: function 'majority_vote' is not supported"),
    ({"filter_list": [{"name": "x", "filter": [{"function": "regex", "regex_pattern": "("}]}]},
     "filter_list[0].filter[0].regex_pattern: not a regular expression"),
    ({"filter_list": [{"name": "x", "filter": [{"function": "regex"}]}]}, "filter_list[0].filter: must end with take_first"),
    ({"task": ["a", "b"]}, "qa.yaml: task: must be one task name"),
    ({"doc_to_text": None}, "qa.yaml: doc_to_text: required"),
    ({"doc_to_text": 5}, "qa.yaml: doc_to_text: must be a column name or a Jinja2 template"),
    ({"output_type": "multiple_choice"}, "qa.yaml: doc_to_choice: required for output_type multiple_choice"),
    ({"metadata": {"synthmix": {"group": "other"}}}, "metadata.synthmix.group: reasoning, grounded or null"),
])
def test_unsupported_keys_and_values_name_the_file_and_the_key(project, change, message):
    spec = {**QA, **change}
    if change.get("task") is not None and not isinstance(change["task"], str):
        write(project, spec)
        with pytest.raises(ParamsError, match="unknown task"):  # a group YAML defines no task named qa
            params_of()
        return
    write(project, {k: v for k, v in spec.items() if v is not None})
    with pytest.raises(ParamsError) as err:
        params_of()
    assert message in str(err.value)
    assert "task 'qa'" in str(err.value) and "tasks: " in str(err.value)


def test_python_hooks_are_refused_with_their_line(project):
    (project / "tasks/qa.yaml").write_text(yaml.safe_dump(QA) + "process_results: !function utils.process\n")
    with pytest.raises(ParamsError, match=r"qa.yaml: \(YAML\): line 13: .*'!function'.*: Python hooks such as `!function` are not supported"):
        params_of()


def test_task_names_are_checked_across_the_study(project):
    write(project, QA)
    with pytest.raises(ParamsError, match=r"unknown task\(s\) \['qb'\]; built-in: .*; under task_paths: \['qa'\]"):
        params_of(["qb"])
    write(project, {**QA, "task": "math"}, "clash.yaml")
    with pytest.raises(ParamsError, match="clash.yaml defines task 'math', the name of a built-in family"):
        params_of()
    (project / "tasks/clash.yaml").unlink()
    write(project, QA, "again.yaml")
    with pytest.raises(ParamsError, match="task 'qa' is defined twice"):
        params_of()
    (project / "tasks/again.yaml").unlink()
    # a folder that is not there holds no task: only a task that should be in it is an error
    assert parse_params({"task_paths": ["nowhere"], "tasks": ["math"]}).tasks == ["math"]
    with pytest.raises(ParamsError, match=r"unknown task\(s\) \['qa'\].*task_paths that do not exist here: \['nowhere'\]"):
        parse_params({"task_paths": ["nowhere"], "tasks": ["qa"]})
    with pytest.raises(ParamsError, match="generate.mode: instances is not supported for YAML tasks"):
        params_of(generate={"mode": "instances"}, train={"loss_on": "sequence"})
    with pytest.raises(ParamsError, match="prepare.sources.qa: a YAML task reads its YAML's dataset"):
        params_of(prepare={"sources": {"qa": "hub"}})
    with pytest.raises(ParamsError, match=r"max_new_tokens: unknown task\(s\) \['qb'\]"):
        params_of(max_new_tokens={"qb": 4})


def test_each_task_picks_its_own_source(project):
    write(project, QA)
    params = params_of(["qa", "math", "factual"], prepare={"sources": {"math": "hub"}})
    assert [params.task_source(t) for t in params.tasks] == ["yaml", "hub", "builtin"]
    assert params.task("math").source == "hub" and params.task("factual").source == "builtin"
    # a YAML task may keep every row; a built-in one cannot
    params_of(prepare={"sizes": {"qa": {"train_size": None}}})
    with pytest.raises(ParamsError, match=r"prepare.sizes.math.train_size: null \(every row\) needs source: hub"):
        params_of(["qa", "math"], prepare={"sizes": {"math": {"train_size": None}}})


def test_include_inherits_and_overrides(project):
    base = {k: v for k, v in QA.items() if k != "task"}
    (project / "tasks/_base").write_text(yaml.safe_dump(base))  # not a *.yaml: only included
    write(project, {"include": "_base", "task": "qa", "doc_to_text": "Question: {{question}}\nAnswer:"})
    task = params_of().task("qa")
    first = task.load({"train": None, "test": None}, 0)["train"].examples[0]
    assert first["prompt"] == "Question: what is 0 and 0?\nAnswer:" and first["completion"] == " 0"


def test_missing_data_files_and_bad_rows_name_the_row(project):
    write(project, {**QA, "dataset_kwargs": {"data_files": {"train": "data/nope.jsonl", "test": "data/test.jsonl"}}})
    from synthmix.tasks.yaml_spec import TaskYamlError

    with pytest.raises(TaskYamlError, match="data_files: data/nope.jsonl does not exist"):
        params_of().task("qa").load({"train": None, "test": None}, 0)
    write(project, {**QA, "doc_to_text": "Q: {{question}} {{missing}}"})
    with pytest.raises(TaskYamlError, match=r"qa.yaml: test row 0 \(.*what is 24.*\): UndefinedError: 'missing' is undefined"):
        params_of().task("qa").load({"train": None, "test": None}, 0)


def test_templates_are_sandboxed(project):
    write(project, {**QA, "doc_to_text": "{{ question.__class__.__mro__[1].__subclasses__() }}"})
    from synthmix.tasks.yaml_spec import TaskYamlError

    with pytest.raises(TaskYamlError, match="SecurityError|unsafe"):
        params_of().task("qa").load({"train": None, "test": None}, 0)


def test_prepare_refuses_a_yaml_dvc_would_not_track(project):
    from synthmix.prepare import untracked

    write(project, QA)
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"prepare": {"cmd": "x", "deps": ["configs/tasks"]}}}))
    task = params_of().task("qa")
    assert untracked(task) == ["tasks/qa.yaml", "data/train.jsonl", "data/test.jsonl"]
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"prepare": {"cmd": "x", "deps": ["tasks", "data"]}}}))
    assert untracked(task) == []
    from synthmix import prepare

    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"prepare": {"cmd": "x", "deps": ["tasks"]}}}))
    assert prepare.run(params_of()) == 2
    assert not (project / "data/external").exists()


# ----- lm-eval's meanings, against lm-eval ----------------------------------------------------------

def _strings(rng: random.Random, n: int) -> list[str]:
    alphabet = "ab AB,.$#1230\n-"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(n)]


@pytest.mark.parametrize("kwargs", [
    {}, {"ignore_case": True}, {"ignore_punctuation": True}, {"ignore_numbers": True},
    {"regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"], "ignore_case": True},
])
def test_exact_match_is_lm_evals(kwargs):
    from lm_eval.api.metrics import exact_match_hf_evaluate

    rng = random.Random(0)
    preds, refs = _strings(rng, 400), _strings(rng, 400)
    refs[::3] = [p.upper() for p in preds[::3]]  # plenty of near-equal pairs
    refs[1::5] = [p + "." for p in preds[1::5]]
    for p, r in zip(preds, refs):
        assert exact_match(p, r, **kwargs) == exact_match_hf_evaluate([p], [r], **kwargs)["exact_match"], (p, r)


@pytest.mark.parametrize("args", [
    {"regex_pattern": "#### (\\-?[0-9\\.\\,]+)"},
    {"regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)", "group_select": -1},
    {"regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)", "group_select": 0, "fallback": "none"},
    {"regex_pattern": "[AB]"},
])
def test_regex_filter_is_lm_evals(args):
    from lm_eval.filters.extraction import RegexFilter

    rng = random.Random(1)
    texts = _strings(rng, 300) + [" #### 12", "x 1,200 and 7", "#### -3.5\n#### 4", "", "A or B"]
    ours = Filter("f", (("regex", args), ("take_first", {})))
    theirs = RegexFilter(**args)
    assert [ours.apply(t) for t in texts] == [r[0] for r in theirs.apply([[t] for t in texts], None)]


def test_binary_f1_is_lm_evals():
    from lm_eval.api.metrics import f1_score

    rng = random.Random(2)
    for _ in range(50):
        golds = [rng.randrange(2) for _ in range(20)]
        preds = [rng.randrange(2) for _ in range(20)]
        assert binary_f1(golds, preds) == pytest.approx(f1_score(list(zip(golds, preds))))


def test_multiple_choice_renders_as_lm_eval_does(project):
    from lm_eval.api.task import ConfigurableTask

    spec = {**QA, "output_type": "multiple_choice", "doc_to_choice": "{{options}}", "doc_to_target": "{{label}}",
            "description": "Answer yes or no.\n", "target_delimiter": ": ", "metric_list": [{"metric": "acc"}, {"metric": "f1"}]}
    write(project, spec)
    task = params_of().task("qa")
    mine = task.load({"train": None, "test": None}, 0)["test"].examples
    reference = ConfigurableTask(config=spec)
    docs = list(reference.test_docs())
    for doc, ex in zip(docs, mine):
        assert spec["description"] + reference.doc_to_text(doc) == ex["prompt"]
        assert reference.doc_to_choice(doc) == ex["choices"] and reference.doc_to_target(doc) == ex["label"]
        # lm-eval's continuations are target_delimiter + choice; acc is the argmax of their summed log-likelihood
        assert [c for _, c in (i.arguments for i in reference.construct_requests(doc, ex["prompt"], metadata=("qa", 0, 1)))] \
            == task.choices(ex)
    assert task.choice_reduction == "sum" and task.score_name == "acc"
    scored = task.score(mine, [task.choices(ex)[1] for ex in mine])
    summary = task.summarize(mine, scored)
    from lm_eval.api.metrics import f1_score

    assert summary["f1"] == pytest.approx(f1_score([(ex["label"], 1) for ex in mine]))
    assert summary["acc"] == sum(ex["label"] == 1 for ex in mine) / len(mine)


def test_generate_until_targets_and_filters_as_lm_eval_does(project):
    from lm_eval.api.task import ConfigurableTask

    spec = {**QA, "doc_to_target": "{{answer}} units", "generation_kwargs": {"until": ["\n", "Q:"], "max_gen_toks": 5},
            "filter_list": [{"name": "num", "filter": [{"function": "regex", "regex_pattern": "([0-9]+)"},
                                                       {"function": "take_first"}]},
                            {"name": "raw", "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}],
            "metric_list": [{"metric": "exact_match", "regexes_to_ignore": [" units"]}]}
    write(project, spec)
    task = params_of().task("qa")
    mine = task.load({"train": None, "test": None}, 0)["test"].examples
    reference = ConfigurableTask(config=spec)
    assert task.max_new_tokens == 5
    for doc, ex in zip(reference.test_docs(), mine):
        assert reference.doc_to_text(doc) == ex["prompt"] and " " + reference.doc_to_target(doc) == ex["completion"]
        for text in (ex["completion"], f" {ex['targets'][0]}\nQ: more", " none", f" {int(doc['answer']) + 1} units"):
            inst = reference.construct_requests(doc, ex["prompt"], metadata=("qa", 0, 1))
            inst = inst[0] if isinstance(inst, list) else inst
            inst.resps = [task.stop(text)]
            for ensemble in reference._filters:
                ensemble.apply([inst])
            ours = task.score([ex], [text])[0]
            assert ours.correct == reference.process_results(doc, [inst.filtered_resps["num"]])["exact_match"]
            assert ours.extra["exact_match,raw"] == reference.process_results(doc, [inst.filtered_resps["raw"]])["exact_match"]
    assert task.stop(" 12\nQ: next") == " 12" and task.stop(" 12 Q: x") == " 12 "


def test_the_index_rereads_a_yaml_that_changed(project):
    from synthmix.tasks.yaml_spec import index

    path = write(project, QA)
    assert set(index(["tasks"])) == {"qa"}
    path.write_text(yaml.safe_dump({**QA, "task": "qa_renamed_in_place"}))  # a new version of the file
    assert set(index(["tasks"])) == {"qa_renamed_in_place"}
