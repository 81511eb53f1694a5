"""`reading`: SQuAD 2.0-like extractive reading comprehension with unanswerable questions.

A passage is 2-3 sentences about one made-up person, each saying what they did with one of six
verbs (visited, cooked, played, adopted, studied, sold) and a two-word object ("west Fapo",
"spicy soup", "three cats"...). The question asks what the person did with one verb: one of the
passage's (the answer is the span after that verb) or, about 1/3 of the time, one the passage
does not use (the answer is "unanswerable").

Prompt and completion::

    Passage: Mara Velin cooked spicy soup. She adopted three cats.
    Question: What has Mara Velin adopted?
    Answer:                                                  -> " three cats"

Scoring follows the official SQuAD 2.0 script: normalised exact match and token F1, max over the
gold answers; an unanswerable question is right only when the prediction is empty ("unanswerable"
is read as the empty prediction). Metrics are fractions in [0, 1], not percentages. Train and test
are disjoint parts of the item space (a stable hash of the prompt decides).

Why this shape: with the loss on a 1-3 token completion, a ~1M-parameter model trained for 750
steps does not learn to look things up in a passage by meaning (a first design with "lives in"/
"Where does X live?" stayed at the always-unanswerable baseline). Here the question ends with the
very word that precedes the answer in the passage (an induction-head pattern, the easiest lookup
for a small transformer), and two-word answers give every answerable example a second, copyable
token to learn from.
"""

from __future__ import annotations

import random
import re
from typing import Any, Literal

from synthmix.tasks.base import Example, Scored, TaskFamily, register
from synthmix.tasks.text import best_over_golds, build_partitioned, first_line, normalize_answer, unique_words

NO_ANSWER = "unanswerable"
UNANSWERABLE_SHARE = 1 / 3

# Fixed pools (not drawn from the run's seed): names and cities are made up once.
_POOL_RNG = random.Random("reading:pools")
CITIES = tuple(unique_words(_POOL_RNG, 12, set()))
FIRST_NAMES = tuple(unique_words(_POOL_RNG, 20, set(CITIES)))
LAST_NAMES = tuple(unique_words(_POOL_RNG, 20, set(CITIES) | set(FIRST_NAMES)))
#: the pretraining corpus's passages are about other people: no passage of an item is in it
#: documents (three passages each) of the pretraining corpus per pass
CORPUS_DOCUMENTS = 100
CORPUS_NAMES = tuple(unique_words(_POOL_RNG, 40, set(CITIES) | set(FIRST_NAMES) | set(LAST_NAMES)))


def _two_words(firsts: tuple[str, ...], seconds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{a} {b}" for a in firsts for b in seconds)


# verb -> the objects a sentence with that verb can name (word sets disjoint across verbs)
VALUES: dict[str, tuple[str, ...]] = {
    "visited": _two_words(("north", "south", "east", "west"), CITIES),
    "cooked": _two_words(("spicy", "sweet", "salty", "sour"), ("soup", "rice", "noodles", "pasta", "stew", "curry")),
    "played": _two_words(("old", "new", "cheap", "rare"), ("piano", "violin", "guitar", "drums", "flute", "harp")),
    "adopted": _two_words(("two", "three", "four", "five"), ("dogs", "cats", "parrots", "rabbits", "horses", "goats")),
    "studied": _two_words(("modern", "ancient", "applied", "basic"),
                          ("law", "physics", "history", "biology", "chemistry", "art")),
    "sold": _two_words(("red", "blue", "green", "white"), ("boats", "cars", "houses", "bikes", "farms", "shops")),
}
# verb -> question templates ({n} = the person's full name); each ends with the verb
QUESTIONS: dict[str, tuple[str, ...]] = {
    "visited": ("Which city has {n} visited?", "What place has {n} visited?"),
    "cooked": ("What has {n} cooked?", "Which dish has {n} cooked?"),
    "played": ("Which instrument has {n} played?", "What has {n} played?"),
    "adopted": ("Which animals has {n} adopted?", "What has {n} adopted?"),
    "studied": ("Which subject has {n} studied?", "What has {n} studied?"),
    "sold": ("What has {n} sold?", "What things has {n} sold?"),
}

_PROMPT = re.compile(r"^Passage: (?P<passage>[^\n]+)\nQuestion: (?P<question>[^\n]+)\nAnswer:$")


def _passage(rng: random.Random, name: str) -> tuple[str, dict[str, str]]:
    """A passage about `name` and what it says they did: {verb: object}."""
    pronoun = rng.choice(("He", "She"))
    mentioned = rng.sample(list(VALUES), rng.choice((2, 3)))
    values = {verb: rng.choice(VALUES[verb]) for verb in mentioned}
    passage = " ".join(f"{name if k == 0 else pronoun} {verb} {values[verb]}." for k, verb in enumerate(mentioned))
    return passage, values


def _item(rng: random.Random) -> tuple[str, str, list[str]]:
    """(passage, question, gold answers; [] when unanswerable) of one random item."""
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    passage, values = _passage(rng, name)
    mentioned = list(values)
    if rng.random() < UNANSWERABLE_SHARE:
        asked = rng.choice([verb for verb in VALUES if verb not in mentioned])
        answers: list[str] = []
    else:
        asked = rng.choice(mentioned)
        answers = [values[asked]]
    return passage, rng.choice(QUESTIONS[asked]).format(n=name), answers


def parse_prompt(prompt: str) -> tuple[str, str] | None:
    """(passage, question) of a prompt in the task's format, else None."""
    m = _PROMPT.match(prompt)
    return (m["passage"], m["question"]) if m else None


@register
class Reading(TaskFamily):
    """Answer with a span of the passage, or "unanswerable"."""

    name = "reading"
    order = 3
    group = "grounded"
    paper_sensitivity = -0.05  # the paper's task sensitivity (protocol.md)
    hub_defaults = {
        "train": {"path": "rajpurkar/squad_v2", "split": "train", "format": "squad_v2"},
        "test": {"path": "rajpurkar/squad_v2", "split": "validation", "format": "squad_v2"},
    }
    hub_formats = ("squad_v2",)
    kind = "generate"
    score_name = "f1"
    max_new_tokens = 16  # longest gold answer ("ancient chemistry") is ~3 tokens
    completion_chars = (2, 40)

    def build(self, split: Literal["train", "test"], n: int, seed: int) -> list[Example]:
        """`n` distinct items from the split's side of the item space."""
        rng = random.Random(f"{self.name}:{split}:{seed}")

        def draw() -> tuple[str, Example]:
            passage, question, answers = _item(rng)
            prompt = f"Passage: {passage}\nQuestion: {question}\nAnswer:"
            return prompt, {"completion": f" {answers[0] if answers else NO_ANSWER}", "answers": answers}

        return build_partitioned(self.name, split, n, draw)

    def corpus(self, rng: random.Random) -> list[str]:
        """Passages like the task's, a few to a document and with no questions, about people no
        item names (`CORPUS_NAMES`)."""
        docs = []
        for _ in range(CORPUS_DOCUMENTS):
            names = [f"{rng.choice(CORPUS_NAMES)} {rng.choice(CORPUS_NAMES)}" for _ in range(3)]
            docs.append(" ".join(_passage(rng, name)[0] for name in names))
        return docs

    def extract(self, text: str) -> str:
        """The completion's first line, stripped; "unanswerable" (any case) and an empty completion
        are the empty prediction, which is how SQuAD 2.0 represents "no answer"."""
        line = first_line(text)
        return "" if line.lower() == NO_ANSWER else line

    def score(self, examples: list[Example], completions: list[str]) -> list[Scored]:
        """Official SQuAD 2.0 EM/F1 per example; ``correct`` is the EM."""
        out = []
        for ex, text in zip(examples, completions):
            pred = self.extract(text)
            em, f1 = best_over_golds(pred, ex["answers"])
            out.append(Scored(em, pred, {"f1": f1, "has_answer": bool(ex["answers"])}))
        return out

    def summarize(self, examples: list[Example], scored: list[Scored]) -> dict[str, float]:
        """EM and F1 overall and split by HasAns/NoAns, with the squad_v2 metric's key names
        (values are fractions; a split with no examples of a kind reports 0.0 for it)."""

        def mean(xs: list[float]) -> float:
            return sum(xs) / len(xs) if xs else 0.0

        has = [s for s in scored if s.extra["has_answer"]]
        no = [s for s in scored if not s.extra["has_answer"]]
        return {
            "exact_match": mean([s.correct for s in scored]),
            "f1": mean([s.extra["f1"] for s in scored]),
            "total": float(len(scored)),
            "HasAns_exact": mean([s.correct for s in has]),
            "HasAns_f1": mean([s.extra["f1"] for s in has]),
            "HasAns_total": float(len(has)),
            "NoAns_exact": mean([s.correct for s in no]),
            "NoAns_f1": mean([s.extra["f1"] for s in no]),
            "NoAns_total": float(len(no)),
        }

    def trivial_baseline(self, train: list[Example], test: list[Example]) -> dict[str, Any]:
        """Always answer "unanswerable": F1 = the share of unanswerable test questions."""
        scored = self.score(test, [f" {NO_ANSWER}"] * len(test))
        return {"name": "always unanswerable", "score": self.summarize(test, scored)["f1"]}

    def instance_prompt(self, rng: random.Random) -> str:
        """Whole examples start with the passage."""
        return "Passage:"

    def parse_instance(self, text: str) -> Example | None:
        """Split a written example at "\\nAnswer:"; its answer is what follows (none if "unanswerable")."""
        head, sep, completion = text.partition("\nAnswer:")
        if not sep or parse_prompt(head + sep) is None:
            return None
        answer = self.extract(completion)
        return {"prompt": head + sep, "completion": completion, "answers": [answer] if answer else []}

    def checks(self, example: Example) -> dict[str, bool]:
        """Prompt in format; the answer is "unanswerable" or a span of the passage.

        Built-in data: whole words of the passage after SQuAD normalisation. Hub data (SQuAD 2.0):
        any stretch of the passage's characters, compared without case (a gold answer is a character
        span that may end inside a word: "Beyoncé" of "Beyoncé's", "1990s" of "1990s-era"), or of its
        normalised text."""
        parsed = parse_prompt(example.get("prompt") or "")
        answer = self.extract(example.get("completion") or "")
        if answer == "" or parsed is None:
            span = answer == ""
        elif self.source == "builtin":
            span = f" {normalize_answer(answer)} " in f" {normalize_answer(parsed[0])} "
        else:
            norm = normalize_answer(answer)
            span = answer.casefold() in parsed[0].casefold() or bool(norm and norm in normalize_answer(parsed[0]))
        return {"prompt_format": parsed is not None, "span_or_unanswerable": span}
