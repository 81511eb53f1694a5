"""`commonsense`: CommonsenseQA-like five-way multiple choice over a small generated world.

Eight categories of everyday objects (fruit, tools, books...), six objects each, every category
with a typical location, a use and a kind. A question asks one attribute of one object through
one of four templates per attribute; the four distractors are the same attribute of other
categories, and the five options are in shuffled order.

Prompt and completion::

    Question: Where would you most likely find a hammer?
    Choices: A) kitchen B) garage C) library D) closet E) garden
    Answer:                                                        -> " B) garage"

Train/test split: for every (object, attribute) two of the four templates are held out (chosen
from the seed) and only the test split asks them, so a test question is a new phrasing of a fact
the train split teaches with the two other templates (and the held-out phrasings with other
objects); shuffled options defeat memorising a letter.
"""

from __future__ import annotations

import random
import re
from typing import Any, Literal

from synthmix.tasks.base import Example, Scored, TaskFamily, register

LETTERS = "ABCDE"

# (kind, location, use, objects): every value is unique within its attribute. The world is kept
# small (48 objects) because each example carries a single informative token (the letter): a
# bigger one is not learnt by a ~1M-parameter model in 3 epochs of 2000 examples.
WORLD: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("fruit", "kitchen", "eating", ("apple", "banana", "pear", "peach", "plum", "mango")),
    ("tool", "garage", "fixing things", ("hammer", "wrench", "saw", "drill", "screwdriver", "chisel")),
    ("book", "library", "reading", ("novel", "dictionary", "atlas", "textbook", "encyclopedia", "biography")),
    ("toy", "toy box", "playing", ("ball", "doll", "kite", "puzzle", "teddy bear", "yo-yo")),
    ("piece of clothing", "closet", "wearing", ("shirt", "sock", "jacket", "scarf", "sweater", "coat")),
    ("musical instrument", "music room", "making music", ("guitar", "violin", "drum", "flute", "trumpet", "harp")),
    ("flower", "garden", "decoration", ("rose", "tulip", "daisy", "lily", "sunflower", "orchid")),
    ("vehicle", "parking lot", "travelling", ("car", "bus", "truck", "bicycle", "tractor", "van")),
)
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
#: phrasings per (object, attribute) that only the test split asks
HELD_OUT = 2
# attribute -> object -> value, and attribute -> all values (the distractor pool)
FACTS: dict[str, dict[str, str]] = {attr: {} for attr in ATTRIBUTES}
for _kind, _location, _use, _objects in WORLD:
    for _obj in _objects:
        FACTS["kind"][_obj], FACTS["location"][_obj], FACTS["use"][_obj] = _kind, _location, _use
VALUES: dict[str, tuple[str, ...]] = {attr: tuple(dict.fromkeys(FACTS[attr].values())) for attr in ATTRIBUTES}
OBJECTS: tuple[str, ...] = tuple(obj for *_, objects in WORLD for obj in objects)

_PROMPT = re.compile(
    r"^Question: (?P<q>[^\n]+)\nChoices: A\) (?P<A>.+?) B\) (?P<B>.+?) C\) (?P<C>.+?) D\) (?P<D>.+?) "
    r"E\) (?P<E>[^\n]+?)\nAnswer:$"
)
_LETTER = re.compile(r"^\s*\(?([A-E])(?:\)|\.|:|\s|$)")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _question(template: str, obj: str) -> str:
    a = _article(obj)
    return template.format(a=a, A=a.capitalize(), o=obj)


def _pairs(seed: int) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    """(train, test) lists of (template index, attribute, object): `HELD_OUT` templates per
    (object, attribute), drawn from the seed, are the test split's."""
    rng = random.Random(f"commonsense:world:{seed}")
    train, test = [], []
    for obj in OBJECTS:
        for attr in ATTRIBUTES:
            held_out = set(rng.sample(range(len(TEMPLATES[attr])), HELD_OUT))
            for t in range(len(TEMPLATES[attr])):
                (test if t in held_out else train).append((t, attr, obj))
    return train, test


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
    max_new_tokens = 16  # longest completion " E) musical instrument" is ~6 tokens
    completion_chars = (4, 40)

    def build(self, split: Literal["train", "test"], n: int, seed: int) -> list[Example]:
        """`n` questions drawn by cycling over the split's (template, object) pairs in shuffled order."""
        pool = _pairs(seed)[0 if split == "train" else 1]
        rng = random.Random(f"{self.name}:{split}:{seed}")
        rows: list[Example] = []
        order: list[tuple[int, str, str]] = []
        for i in range(n):
            if not order:  # reshuffle each pass so every pair is used before any repeats
                order = rng.sample(pool, len(pool))
            t, attr, obj = order.pop()
            gold = FACTS[attr][obj]
            options = rng.sample([v for v in VALUES[attr] if v != gold], 4) + [gold]
            rng.shuffle(options)
            label = options.index(gold)
            question = _question(TEMPLATES[attr][t], obj)
            rows.append({
                "id": f"{self.name}-{split}-{i:06d}",
                "prompt": format_prompt(question, options),
                "completion": f" {LETTERS[label]}) {gold}",
                "choices": options,
                "label": label,
                "attribute": attr,
                "object": obj,
            })
        return rows

    def choices(self, example: Example) -> list[str]:
        """The five candidate completions " A) <option>" ... " E) <option>"."""
        return [f" {LETTERS[i]}) {opt}" for i, opt in enumerate(example["choices"])]

    def extract(self, text: str) -> str | None:
        """The choice letter at the start of a completion ("B" from " B) garage"), else None."""
        m = _LETTER.match(text)
        return m.group(1) if m else None

    def score(self, examples: list[Example], completions: list[str]) -> list[Scored]:
        """Correct when the extracted letter is the gold label's."""
        out = []
        for ex, text in zip(examples, completions):
            letter = self.extract(text)
            out.append(Scored(float(letter == LETTERS[ex["label"]]), letter, {}))
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
        """Split a written example at "\\nAnswer:"; the label is the letter the example answers."""
        head, sep, completion = text.partition("\nAnswer:")
        parsed = parse_prompt(head + sep) if sep else None
        if parsed is None:
            return None
        question, options = parsed
        letter = self.extract(completion)
        return {
            "prompt": head + sep,
            "completion": completion,
            "choices": options,
            "label": LETTERS.index(letter) if letter else None,
        }

    def checks(self, example: Example) -> dict[str, bool]:
        """Prompt in format; completion names a letter A-E; the text after it is that option."""
        completion = example.get("completion") or ""
        parsed = parse_prompt(example.get("prompt") or "")
        letter = self.extract(completion)
        matches = False
        if parsed is not None and letter is not None:
            matches = completion.strip() == f"{letter}) {parsed[1][LETTERS.index(letter)]}"
        return {"prompt_format": parsed is not None, "valid_choice": letter is not None, "choice_text_matches": matches}
