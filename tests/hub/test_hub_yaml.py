"""lm-evaluation-harness's own gsm8k.yaml as a synthmix YAML task, on the local GSM8K copy.

The YAML is the file lm-eval ships (lm_eval/tasks/gsm8k/gsm8k.yaml), read from the installed
package, with two keys changed: `dataset_path` points at the local copy, and `num_fewshot: 5`
becomes 0 (synthmix fine-tunes on the training split and evaluates zero-shot; a few-shot value is
refused). Everything else runs as written: its "#### " regex filters, exact_match with
`regexes_to_ignore`, `until`.

Two references: the built-in hub adapter (the math family's GSM8K rule) must score every
completion here the same, and lm-eval itself (ConfigurableTask, its filters and process_results)
must render the same prompts and targets and reach the same verdicts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from synthmix.params import ParamsError, parse_params
from synthmix.tasks import get_task

lm_eval = pytest.importorskip("lm_eval")

LM_EVAL_GSM8K = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"

#: completions of each GSM8K test row: the gold solution, then answers the two rules must judge alike
VARIANTS = [
    lambda gold, n: gold,
    lambda gold, n: f" The answer is {n}.\n#### {n}",
    lambda gold, n: f" #### {int(n):,}",                # thousands separators are ignored by both
    lambda gold, n: f" #### {int(n) + 1}",              # wrong number
    lambda gold, n: f" so it is {n}",                   # no "#### " line: no answer
    lambda gold, n: f" #### -{n}",
    lambda gold, n: f" #### {n}\n\nQuestion: next",     # cut at `until` ("Question:") in both
    lambda gold, n: f" 12 apples, 7 pears: {n}.\n#### {n}",  # several numbers: which match counts
]


@pytest.fixture(scope="module")
def yaml_dir(copies, tmp_path_factory):
    raw = yaml.safe_load(LM_EVAL_GSM8K.read_text())
    assert raw["task"] == "gsm8k" and raw["num_fewshot"] == 5  # lm-eval's file, as shipped
    raw["dataset_path"] = copies["math"]["test"]["path"]
    raw["num_fewshot"] = 0
    folder = tmp_path_factory.mktemp("lm_eval_tasks")
    (folder / "gsm8k.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder, raw


@pytest.fixture(scope="module")
def task(yaml_dir):
    params = parse_params({"task_paths": [str(yaml_dir[0])], "tasks": ["gsm8k"]})
    return params.task("gsm8k")


def test_lm_evals_own_yaml_is_accepted_but_few_shot_is_refused(yaml_dir, tmp_path):
    _, raw = yaml_dir
    shipped = {**raw, "num_fewshot": 5}
    (tmp_path / "gsm8k.yaml").write_text(yaml.safe_dump(shipped))
    with pytest.raises(ParamsError, match=r"gsm8k.yaml: num_fewshot: 5 is not supported \(synthmix fine-tunes"):
        parse_params({"task_paths": [str(tmp_path)], "tasks": ["gsm8k"]})


def test_scores_as_the_built_in_hub_adapter_does(task, load):
    math = get_task("math", source="hub")
    hub = load("math")["test"].examples
    mine = task.load({"train": None, "test": None}, seed=0)["test"].examples
    assert len(mine) == len(hub) == 2
    checked = 0
    for ours, theirs in zip(mine, hub):
        assert ours["completion"] == theirs["completion"]  # " " + the worked solution, as the adapter
        n = theirs["answer"]
        for variant in VARIANTS:
            text = variant(ours["completion"], n)
            assert task.score([ours], [text])[0].correct == math.score([theirs], [math.stop(text)])[0].correct, text
            checked += 1
    assert checked == 2 * len(VARIANTS)
    # and what this run shows: the two rules agree on every variant above, gold right and the rest
    assert [task.score([mine[0]], [v(mine[0]["completion"], hub[0]["answer"])])[0].correct for v in VARIANTS] == \
        [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0]


def test_known_differences_from_the_built_in_rule(task, load):
    """Where lm-eval's gsm8k.yaml and the math family's rule part: the YAML's strict-match takes the
    first "#### " match and compares strings; the family takes the last "####" line and compares
    numbers. Both are kept as their authors define them (README, "Your own task")."""
    math = get_task("math", source="hub")
    theirs = load("math")["test"].examples[0]  # answer 30
    ours = task.load({"train": None, "test": None}, seed=0)["test"].examples[0]
    for text, yaml_verdict, family_verdict in ((" #### 30.0", 0.0, 1.0), (" #### 30\n#### 31", 1.0, 0.0)):
        assert task.score([ours], [text])[0].correct == yaml_verdict
        assert math.score([theirs], [text])[0].correct == family_verdict


def test_lm_eval_itself_renders_and_judges_the_same(task, yaml_dir):
    from lm_eval.api.task import ConfigurableTask

    _, raw = yaml_dir
    reference = ConfigurableTask(config={k: v for k, v in raw.items() if k not in ("tag",)})
    docs = list(reference.test_docs())
    mine = task.load({"train": None, "test": None}, seed=0)["test"].examples
    assert [reference.doc_to_text(d) for d in docs] == [ex["prompt"] for ex in mine]
    assert [reference.config.target_delimiter + reference.doc_to_target(d) for d in docs] == [ex["completion"] for ex in mine]
    for doc, ex in zip(docs, mine):
        for variant in VARIANTS:
            text = task.stop(variant(ex["completion"], "30"))  # lm-eval's model stops at `until`
            inst = reference.construct_requests(doc, reference.doc_to_text(doc), metadata=("gsm8k", 0, 1))
            inst = inst[0] if isinstance(inst, list) else inst
            inst.resps = [text]
            for ensemble in reference._filters:
                ensemble.apply([inst])
            scored = task.score([ex], [text])[0]
            for name, filtered in inst.filtered_resps.items():
                expected = reference.process_results(doc, [filtered])["exact_match"]
                key = "exact_match" if name == "strict-match" else f"exact_match,{name}"
                got = scored.correct if key == "exact_match" else scored.extra[key]
                assert got == expected, (text, name)
