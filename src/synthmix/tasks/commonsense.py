"""`commonsense`: CommonsenseQA-like five-way multiple choice over a generated world.

Eight categories of everyday things (fruit, tools, books...), each with a typical location, a use
and a kind, and 43 made-up objects in each ("a velo", "a dusik"): 344 objects, 1,032 facts. The
pretraining corpus (`corpus`, synthmix.pretrain) states every object's three facts in prose,
reworded on every pass ("A velo is a kind of fruit. People keep a velo in the kitchen."). A
question asks one attribute of one object through one of four templates; the four distractors
are the same attribute of other categories, and the five options are in shuffled order.

Prompt and completion::

    Question: Where would you most likely find a velo?
    Choices: A) kitchen B) garage C) library D) closet E) garden
    Answer:                                                        -> " kitchen"

The answer is the option's text, not its letter: the cloze form of multiple choice that
lm-evaluation-harness uses for ARC, PIQA and HellaSwag (its `doc_to_choice` lists the options'
texts), scored by each option's length-normalised log-likelihood and, for a generated answer, by
which option it names. Measured at tiny (docs/regime.md, section 9): with " A) kitchen" as the
completion, iteration 0 ranked the right option first 91% of the time, but the answers it sampled
named the right letter 21% of the time, chance: the option's text carried the knowledge and the
letter was a guess, so 79% of the synthetic answers paired one option's letter with another's
text, a label no reader could resolve.

Train/test split: for every (object, attribute) one of the four templates, drawn from the seed, is
held out and only the test split asks it, so each of the 1,032 facts is one distinct test question,
in words fine-tuning never used for it. The train split asks the same facts in the three other
phrasings; pretraining states them in prose. Shuffled options defeat memorising a letter.

Why not test objects fine-tuning never shows (as factual does): measured at tiny with a pretrained
base, that design stayed at chance (0.196, SE 0.013, at 1,000 items) although the base ranked an
unseen object's kind first 35% of the time (chance 12.5%): a ~1M-parameter model does not chain
recall and the letter lookup of multiple choice in one step.
"""

from __future__ import annotations

import functools
import random
import re
from typing import Any, Literal

from synthmix.tasks.base import Example, Scored, TaskFamily, register
from synthmix.tasks.text import first_line, unique_words

LETTERS = "ABCDE"

# (kind, location, use): every value is unique within its attribute
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("fruit", "kitchen", "eating"),
    ("tool", "garage", "fixing things"),
    ("book", "library", "reading"),
    ("toy", "toy box", "playing"),
    ("piece of clothing", "closet", "wearing"),
    ("musical instrument", "music room", "making music"),
    ("flower", "garden", "decoration"),
    ("vehicle", "parking lot", "travelling"),
)
OBJECTS_PER_CATEGORY = 43
ATTRIBUTES = ("location", "use", "kind")
TEMPLATES: dict[str, tuple[str, ...]] = {
    "location": (
        "Where would you most likely find {a} {o}?",
        "Where is {a} {o} usually kept?",
        "In which place would you look for {a} {o}?",
        "Where do people usually put {a} {o}?",
    ),
    "use": (
        "What is {a} {o} used for?",
        "What would you use {a} {o} for?",
        "Why would someone need {a} {o}?",
        "What do people do with {a} {o}?",
    ),
    "kind": (
        "What kind of thing is {a} {o}?",
        "{A} {o} is a type of what?",
        "Which group does {a} {o} belong to?",
        "What category does {a} {o} fall into?",
    ),
}
#: the corpus's prose per attribute ({a} article, {o} object, {v} value): none of it is a question
STATEMENTS: dict[str, tuple[str, ...]] = {
    "location": ("You would usually find {a} {o} in the {v}.", "{A} {o} is usually kept in the {v}.",
                 "People put their {o} in the {v}.", "The {v} is where {a} {o} belongs."),
    "use": ("{A} {o} is used for {v}.", "People use {a} {o} for {v}.", "You need {a} {o} for {v}.",
            "The point of {a} {o} is {v}."),
    "kind": ("{A} {o} is a kind of {v}.", "{A} {o} is a type of {v}.", "Every {o} is a {v}.",
             "Among the kinds of {v}, there is the {o}."),
}
VALUES: dict[str, tuple[str, ...]] = {
    "kind": tuple(c[0] for c in CATEGORIES), "location": tuple(c[1] for c in CATEGORIES),
    "use": tuple(c[2] for c in CATEGORIES),
}


@functools.cache
def world() -> dict[str, dict[str, str]]:
    """object -> {attribute: value}, fixed (the same for every seed: only the split varies)."""
    rng = random.Random("commonsense:world")
    names = [w.lower() for w in unique_words(rng, OBJECTS_PER_CATEGORY * len(CATEGORIES), set())]
    return {name: dict(zip(("kind", "location", "use"), CATEGORIES[k // OBJECTS_PER_CATEGORY]))
            for k, name in enumerate(names)}


def held_out(seed: int) -> dict[tuple[str, str], int]:
    """(object, attribute) -> the template index only the test split asks, drawn from the seed."""
    rng = random.Random(f"commonsense:held-out:{seed}")
    return {(obj, attr): rng.randrange(len(TEMPLATES[attr])) for obj in world() for attr in ATTRIBUTES}


_PROMPT = re.compile(
    r"^Question: (?P<q>[^\n]+)\nChoices: A\) (?P<A>.+?) B\) (?P<B>.+?) C\) (?P<C>.+?) D\) (?P<D>.+?) "
    r"E\) (?P<E>[^\n]+?)\nAnswer:$"
)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _question(template: str, obj: str) -> str:
    a = _article(obj)
    return template.format(a=a, A=a.capitalize(), o=obj)


def format_prompt(question: str, options: list[str]) -> str:
    """The prompt of a question with its five options, in label order."""
    listed = " ".join(f"{LETTERS[i]}) {opt}" for i, opt in enumerate(options))
    return f"Question: {question}\nChoices: {listed}\nAnswer:"


def parse_prompt(prompt: str) -> tuple[str, list[str]] | None:
    """(question, five options) of a prompt, or None when it is not in the task's format."""
    m = _PROMPT.match(prompt)
    return (m["q"], [m[letter] for letter in LETTERS]) if m else None


@register
class Commonsense(TaskFamily):
    """Five-way multiple choice about where things are, what they are for and what they are."""

    name = "commonsense"
    order = 0
    hub_defaults = {
        "train": {"path": "tau/commonsense_qa", "split": "train", "format": "commonsense_qa"},
        # the test split's labels are hidden (empty answerKey): the validation split is the test set
        "test": {"path": "tau/commonsense_qa", "split": "validation", "format": "commonsense_qa"},
    }
    hub_formats = ("commonsense_qa",)
    kind = "choice"
    score_name = "accuracy"
    max_new_tokens = 16  # longest completion " musical instrument" is ~3 tokens
    completion_chars = (4, 40)

    def build(self, split: Literal["train", "test"], n: int, seed: int) -> list[Example]:
        """`n` questions, every fact once before any is asked again: test in each fact's held-out
        phrasing, train in the three others, one more each round."""
        held = held_out(seed)
        rng = random.Random(f"{self.name}:{split}:{seed}")
        phrasings = {fact: [h] if split == "test" else rng.sample([t for t in range(len(TEMPLATES[fact[1]])) if t != h],
                                                                   len(TEMPLATES[fact[1]]) - 1)
                     for fact, h in held.items()}
        rows: list[Example] = []
        order: list[tuple[str, str]] = []
        rounds = 0
        for i in range(n):
            if not order:  # every fact once per round, in shuffled order, each round in its next phrasing
                order = rng.sample(list(held), len(held))
                rounds += 1
            obj, attr = fact = order.pop()
            t = phrasings[fact][(rounds - 1) % len(phrasings[fact])]
            gold = world()[obj][attr]
            options = rng.sample([v for v in VALUES[attr] if v != gold], 4) + [gold]
            rng.shuffle(options)
            label = options.index(gold)
            question = _question(TEMPLATES[attr][t], obj)
            rows.append({
                "id": f"{self.name}-{split}-{i:06d}",
                "prompt": format_prompt(question, options),
                "completion": f" {gold}",
                "choices": options,
                "label": label,
                "attribute": attr,
                "object": obj,
            })
        return rows

    def corpus(self, rng: random.Random) -> list[str]:
        """One short document per object: its three facts, each in a statement drawn afresh."""
        docs = []
        for obj, facts in world().items():
            a = _article(obj)
            sentences = [rng.choice(STATEMENTS[attr]).format(a=a, A=a.capitalize(), o=obj, v=facts[attr])
                         for attr in ATTRIBUTES]
            rng.shuffle(sentences)
            docs.append(" ".join(sentences))
        return docs

    def choices(self, example: Example) -> list[str]:
        """The five candidate completions, " <option>" each, in label order."""
        return [f" {opt}" for opt in example["choices"]]

    def extract(self, text: str) -> str | None:
        """The answer a completion names: its first line, stripped ("garage" from " garage"); None
        when empty."""
        return first_line(text) or None

    @staticmethod
    def _option(answer: str | None, options: list[str]) -> int | None:
        """The index of the option `answer` is (case and surrounding space aside), else None."""
        if answer is None:
            return None
        folded, wanted = [opt.strip().lower() for opt in options], answer.lower()
        return folded.index(wanted) if wanted in folded else None

    def score(self, examples: list[Example], completions: list[str]) -> list[Scored]:
        """Correct when the answer is the gold option's text."""
        out = []
        for ex, text in zip(examples, completions):
            answer = self.extract(text)
            out.append(Scored(float(self._option(answer, ex["choices"]) == ex["label"]), answer, {}))
        return out

    def summarize(self, examples: list[Example], scored: list[Scored]) -> dict[str, float]:
        """Accuracy over the split."""
        return {"accuracy": sum(s.correct for s in scored) / len(scored) if scored else 0.0}

    def trivial_baseline(self, train: list[Example], test: list[Example]) -> dict[str, Any]:
        """Uniform guessing among five shuffled options: expected accuracy 1/5."""
        return {"name": "chance", "score": 1.0 / len(LETTERS)}

    def instance_prompt(self, rng: random.Random) -> str:
        """Whole examples start with the question."""
        return "Question:"

    def parse_instance(self, text: str) -> Example | None:
        """Split a written example at "\\nAnswer:"; the label is the option the example answers."""
        head, sep, completion = text.partition("\nAnswer:")
        parsed = parse_prompt(head + sep) if sep else None
        if parsed is None:
            return None
        question, options = parsed
        return {
            "prompt": head + sep,
            "completion": completion,
            "choices": options,
            "label": self._option(self.extract(completion), options),
        }

    def checks(self, example: Example) -> dict[str, bool]:
        """Prompt in format; the completion is one line that is one of the prompt's five options."""
        completion = example.get("completion") or ""
        parsed = parse_prompt(example.get("prompt") or "")
        return {
            "prompt_format": parsed is not None,
            "valid_choice": parsed is not None and self._option(self.extract(completion), parsed[1]) is not None,
            "single_line": "\n" not in completion.strip(),
        }
