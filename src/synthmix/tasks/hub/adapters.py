"""Adapters of the text benchmarks: one function per dataset, mapping one row into its family's format.

Each returns the example's fields (``prompt``, ``completion`` and the family's gold fields) plus
``source_id``, the row's own id (or its index when the dataset has none), from which prepare
builds the example id ``<task>-<split>-<source_id>``. A row that does not fit the schema raises
`RowError`; prepare adds the dataset, split and row index to the message.
"""

from __future__ import annotations

from typing import Any

from synthmix.tasks.base import Example
from synthmix.tasks.commonsense import LETTERS, format_prompt
from synthmix.tasks.math import Math
from synthmix.tasks.reading import NO_ANSWER
from synthmix.tasks.hub.rows import RowError, one_line, struct, text, texts

COMMONSENSE_QA_COLUMNS = ("id", "question", "choices", "answerKey")
GSM8K_COLUMNS = ("question", "answer")
NQ_OPEN_COLUMNS = ("question", "answer")
SQUAD_V2_COLUMNS = ("id", "context", "question", "answers")


def commonsense_qa(row: dict[str, Any], index: int) -> Example:
    """tau/commonsense_qa -> commonsense: the five options in label order (A-E), gold = answerKey.

    Prompt "Question: <q>\\nChoices: A) .. E) ..\\nAnswer:", completion " <option>"
    (the gold option's text: the family's cloze answer)."""
    question = one_line(text(row, "question"))
    choices = struct(row, "choices", ("label", "text"))
    labels = texts(choices["label"], "choices.label")
    options = [one_line(t) for t in texts(choices["text"], "choices.text")]
    if sorted(labels) != list(LETTERS) or len(options) != len(labels):
        raise RowError(f"choices must be the five labels {list(LETTERS)} with one text each, got labels {labels} "
                       f"and {len(options)} texts")
    if not all(options):
        raise RowError(f"choices.text has an empty option: {options}")
    by_label = dict(zip(labels, options))
    options = [by_label[letter] for letter in LETTERS]
    key = text(row, "answerKey", empty_ok=True).strip()
    if not key:
        raise RowError("answerKey is empty: this split's labels are hidden (commonsense_qa's test split has "
                       "none); use the validation split as the test set")
    if key not in LETTERS:
        raise RowError(f"answerKey {key!r} is not one of {list(LETTERS)}")
    label = LETTERS.index(key)
    return {
        "source_id": text(row, "id"),
        "prompt": format_prompt(question, options),
        "completion": f" {options[label]}",
        "choices": options,
        "label": label,
        "concept": row.get("question_concept"),
    }


def gsm8k(row: dict[str, Any], index: int) -> Example:
    """openai/gsm8k -> math: the worked solution verbatim (calculator annotations <<a*b=c>> included)
    as the completion; it ends in "#### <answer>", the line the family's GSM8K rule reads."""
    solution = text(row, "answer").strip()
    value = Math().extract(solution)
    if value is None:
        raise RowError(f"answer has no final '#### <number>' line: ...{solution[-80:]!r}")
    return {
        "source_id": f"{index:06d}",
        "prompt": f"Question: {one_line(text(row, 'question'))}\nAnswer:",
        "completion": f" {solution}",
        # the number as the family compares it (commas dropped), e.g. "1,200" -> "1200"
        "answer": _number(value),
    }


def nq_open(row: dict[str, Any], index: int) -> Example:
    """google-research-datasets/nq_open -> factual: every alias in ``answers``, the first one is the
    completion. NQ questions are lower-case and carry no "?": one is added (the family's format)."""
    question = one_line(text(row, "question"))
    aliases = [one_line(a) for a in texts(row["answer"], "answer")]
    if not all(aliases):
        raise RowError(f"answer has an empty alias: {row['answer']!r}")
    return {
        "source_id": f"{index:06d}",
        "prompt": f"Question: {question if question.endswith('?') else question + '?'}\nAnswer:",
        "completion": f" {aliases[0]}",
        "answers": aliases,
    }


def squad_v2(row: dict[str, Any], index: int) -> Example:
    """rajpurkar/squad_v2 -> reading: the passage and question on one line each; the completion is
    the first gold answer, or "unanswerable" when ``answers.text`` is empty (SQuAD 2.0's no-answer)."""
    answers = struct(row, "answers", ("text",))
    golds = [one_line(a) for a in texts(answers["text"], "answers.text", empty_ok=True)]
    starts = answers.get("answer_start")
    if starts is not None and len(starts) != len(golds):
        raise RowError(f"answers.text has {len(golds)} entries but answers.answer_start {len(starts)}")
    if not all(golds):
        raise RowError(f"answers.text has an empty answer: {answers['text']!r}")
    return {
        "source_id": text(row, "id"),
        "prompt": f"Passage: {one_line(text(row, 'context'))}\nQuestion: {one_line(text(row, 'question'))}\nAnswer:",
        "completion": f" {golds[0] if golds else NO_ANSWER}",
        "answers": golds,
        "title": row.get("title"),
    }


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)

