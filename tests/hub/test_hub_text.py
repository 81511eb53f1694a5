"""CommonsenseQA, GSM8K, NQ-Open and SQuAD 2.0, read by the real datasets.load_dataset from local
copies laid out like the hub repos, mapped by the adapters and judged by the families' own scoring."""

from __future__ import annotations

import pytest

from synthmix.tasks import get_task
from synthmix.tasks.hub import HubError


def _correct(task, examples, completions):
    return [s.correct for s in task.score(examples, completions)]


def _checks_pass(task, train, test):
    """The family's validity rules for hub data accept the mapped gold examples: every check (its
    prompt format included) and the length bounds measured on the train split (test_hub_checks.py
    runs the whole great-expectations suite)."""
    hub = get_task(task.name, source="hub")
    bounds = hub.length_bounds(train)
    return all(all(hub.checks(ex).values()) and all(lo <= len(ex[key]) <= hi for key, (lo, hi) in bounds.items())
               for ex in train + test)


# ----- commonsense <- tau/commonsense_qa ------------------------------------------------------------

def test_commonsense_qa_maps_to_five_way_choice_scored_by_the_family(load):
    task = get_task("commonsense")
    data = load("commonsense")
    train, test = data["train"].examples, data["test"].examples
    assert [ex["id"] for ex in test] == ["commonsense-test-v1", "commonsense-test-v2"]  # the validation split
    milk = test[0]
    assert milk["prompt"] == ("Question: Where is a good place to keep milk cold?\n"
                              "Choices: A) oven B) table C) fridge D) sun E) pocket\nAnswer:")
    assert milk["completion"] == " fridge" and milk["label"] == 2
    assert task.choices(milk)[milk["label"]] == milk["completion"]
    assert _correct(task, test, [ex["completion"] for ex in test]) == [1.0, 1.0]
    assert _correct(task, test, [" oven", " C) fridge"]) == [0.0, 0.0]  # another option; a letter
    # labels listed E..A in the row: options are put in label order, the gold follows its label
    bird = train[2]
    assert bird["choices"] == ["eyes", "tail", "wings", "beak", "feet"] and bird["completion"] == " wings"
    assert "\n" not in bird["prompt"].split("\n")[0] and "relax on a Sunday" in train[1]["prompt"]
    assert _checks_pass(task, train, test)


def test_commonsense_qa_test_split_has_no_labels_and_the_error_says_so(load):
    with pytest.raises(HubError) as err:
        load("commonsense", hub={"test": {"split": "test"}})
    message = str(err.value)
    assert "commonsense_qa" in message and "split='test'" in message and "row 0 (id x1)" in message
    assert "answerKey is empty" in message and "validation" in message


# ----- math <- openai/gsm8k (main) ----------------------------------------------------------------

def test_gsm8k_solution_is_the_completion_and_the_gsm8k_rule_scores_it(load):
    task = get_task("math")
    data = load("math")
    train, test = data["train"].examples, data["test"].examples
    assert len(train) == 3 and len(test) == 2  # config main, not socratic
    eggs = train[1]
    assert eggs["completion"] == " There are 12 * 100 = <<12*100=1200>>1200 eggs.\n#### 1,200"
    assert eggs["answer"] == "1200"
    assert test[0]["prompt"] == "Question: Mia reads 5 pages a day for 6 days. How many pages does she read?\nAnswer:"
    assert _correct(task, train + test, [ex["completion"] for ex in train + test]) == [1.0] * 5
    assert _correct(task, [eggs, eggs, eggs], [" #### 1200", " 1200 eggs", " #### 1201"]) == [1.0, 0.0, 0.0]
    assert _checks_pass(task, train, test)


# ----- factual <- google-research-datasets/nq_open ---------------------------------------------------

def test_nq_open_aliases_all_count_and_train_drops_test_questions(load):
    task = get_task("factual")
    data = load("factual")
    train, test = data["train"].examples, data["test"].examples
    spider = test[0]
    assert spider["prompt"] == "Question: how many legs does a spider have?\nAnswer:"  # "?" added
    assert spider["completion"] == " eight" and spider["answers"] == ["eight", "8"]
    assert _correct(task, [spider] * 4, [" eight", " 8", " Eight.", " six"]) == [1.0, 1.0, 1.0, 0.0]
    assert _correct(task, test, [ex["completion"] for ex in test]) == [1.0, 1.0]
    # the train copy of the spider question is dropped: train and test share no prompt
    assert [ex["id"] for ex in train] == ["factual-train-000000", "factual-train-000001"]
    assert data["train"].info["dropped_test_prompt_overlap"] == 1
    assert not {ex["prompt"] for ex in train} & {ex["prompt"] for ex in test}
    assert _checks_pass(task, train, test)


# ----- reading <- rajpurkar/squad_v2 ----------------------------------------------------------------

def test_squad_v2_answerable_and_unanswerable_scored_by_the_squad2_rules(load):
    task = get_task("reading")
    data = load("reading")
    train, test = data["train"].examples, data["test"].examples
    colonies, no_answer = test
    assert colonies["prompt"].startswith("Passage: Honey bees live in colonies. ") and colonies["prompt"].count("\n") == 2
    assert colonies["completion"] == " in colonies"
    assert colonies["answers"] == ["in colonies", "colonies", "colonies"]
    assert no_answer["answers"] == [] and no_answer["completion"] == " unanswerable"
    assert train[2]["completion"] == " unanswerable"
    assert _correct(task, test, [ex["completion"] for ex in test]) == [1.0, 1.0]
    scored = task.score([colonies] * 3 + [no_answer] * 2,
                        [" colonies", " in the hive", " unanswerable", " unanswerable", " the queen"])
    assert [s.correct for s in scored] == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert [s.extra["has_answer"] for s in scored] == [True] * 3 + [False] * 2
    summary = task.summarize(test, task.score(test, [" colonies", " the queen"]))
    assert summary["HasAns_exact"] == 1.0 and summary["NoAns_exact"] == 0.0 and summary["f1"] == 0.5
    assert task.trivial_baseline(train, test)["score"] == 0.5  # always "unanswerable": the NoAns share
    assert _checks_pass(task, train, test)
