"""`math`: GSM8K-like multi-step arithmetic word problems with a worked solution.

A person starts with some items, then two or three events change the count (buys/finds more,
gives away/loses some). Every number in the question is at most 10 and no count goes negative.

Prompt and completion::

    Question: Tom has 7 apples. He buys 5 more. Then he gives away 3. How many apples does Tom have now?
    Answer:                                                  -> " 7 + 5 = 12. 12 - 3 = 9.\n#### 9"

Answers are extracted and compared as in GSM8K: the number after the last "#### " (commas
stripped), compared numerically. Train and test are disjoint parts of the problem space (a
stable hash of the prompt decides), so test problems are new combinations of the same templates.

Why so small: a ~1M-parameter model trained for 750 steps learns to copy the operands and the
addition/subtraction table up to ~40, but with operands up to 20 and a "doubles" step it stayed
near the most-frequent-answer baseline.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, Literal

from synthmix.tasks.base import Example, Scored, TaskFamily, register
from synthmix.tasks.text import build_partitioned

PEOPLE = (("Tom", "he"), ("Anna", "she"), ("Ben", "he"), ("Lily", "she"), ("Sam", "he"), ("Mia", "she"),
          ("Max", "he"), ("Emma", "she"), ("Leo", "he"), ("Zoe", "she"), ("Jack", "he"), ("Ella", "she"))
ITEMS = ("apples", "marbles", "stickers", "coins", "books", "pencils", "cookies", "cards", "stamps", "shells")
ADD = ("buys {b} more", "finds {b} more", "gets {b} more from a friend", "receives {b} more")
SUB = ("gives away {b}", "loses {b}", "sells {b}", "gives {b} to a friend")
ENDINGS = ("How many {items} does {name} have now?", "How many {items} does {name} have in the end?")
MAX_NUMBER = 10

_ANSWER = re.compile(r"#### (-?[0-9.,]+)")
_STEP = re.compile(r"(\d+) ([+-]) (\d+) = (\d+)\.")


def _chain_recomputes(prompt: str, completion: str, answer: float | None) -> bool:
    """Whether a built-in worked solution is right: see `Math.verify_instances`."""
    steps = [(int(a), op, int(b), int(c)) for a, op, b, c in _STEP.findall(completion)]
    if not steps or answer is None:
        return False
    for k, (a, op, b, c) in enumerate(steps):
        if (a + b if op == "+" else a - b) != c or (k and a != steps[k - 1][3]):
            return False
    question = [int(n) for n in re.findall(r"\d+", prompt)]
    return question == [steps[0][0], *(b for _, _, b, _ in steps)] and steps[-1][3] == answer
_PROMPT = re.compile(r"^Question: [^\n]+\?\nAnswer:$")
#: hub data (GSM8K): one question on one line, whatever its last character (some GSM8K questions end
#: in "." or in an instruction: "... Find the total cost.")
_HUB_PROMPT = re.compile(r"^Question: [^\n]*\S[^\n]*\nAnswer:$")


def _problem(rng: random.Random) -> tuple[str, str, int]:
    """(question, worked solution, answer) of one random problem: 2 steps, or 3 one time in 3."""
    name, pronoun = rng.choice(PEOPLE)
    items = rng.choice(ITEMS)
    value = rng.randint(1, MAX_NUMBER)
    sentences, steps = [f"{name} has {value} {items}."], []
    for k in range(rng.choice((2, 2, 3))):
        subject = pronoun.capitalize() if k == 0 else f"Then {pronoun}"
        if value == 0 or rng.random() < 0.5:
            b = rng.randint(1, MAX_NUMBER)
            new, verb, sign = value + b, rng.choice(ADD), "+"
        else:
            b = rng.randint(1, min(MAX_NUMBER, value))
            new, verb, sign = value - b, rng.choice(SUB), "-"
        sentences.append(f"{subject} {verb.format(b=b)}.")
        steps.append(f"{value} {sign} {b} = {new}.")
        value = new
    sentences.append(rng.choice(ENDINGS).format(items=items, name=name))
    return " ".join(sentences), " ".join(steps), value


def parse_number(text: str) -> float | None:
    """A GSM8K-style number ("1,234", "-3", "9.0") as a float, None when it is not one."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


@register
class Math(TaskFamily):
    """Two- and three-step word problems; the final line of the solution is "#### <answer>"."""

    name = "math"
    order = 1
    group = "reasoning"
    paper_sensitivity = -0.20  # the paper's task sensitivity (protocol.md)
    hub_defaults = {
        "train": {"path": "openai/gsm8k", "name": "main", "split": "train", "format": "gsm8k"},
        "test": {"path": "openai/gsm8k", "name": "main", "split": "test", "format": "gsm8k"},
    }
    hub_formats = ("gsm8k",)
    kind = "generate"
    score_name = "accuracy"
    max_new_tokens = 48  # longest gold solution is ~25 tokens
    completion_chars = (8, 200)

    def build(self, split: Literal["train", "test"], n: int, seed: int) -> list[Example]:
        """`n` distinct problems from the split's side of the problem space."""
        rng = random.Random(f"{self.name}:{split}:{seed}")

        def draw() -> tuple[str, Example]:
            question, solution, answer = _problem(rng)
            fields = {"completion": f" {solution}\n#### {answer}", "answer": str(answer)}
            return f"Question: {question}\nAnswer:", fields

        return build_partitioned(self.name, split, n, draw)

    def corpus(self, rng: random.Random) -> list[str]:
        """Arithmetic in prose, never a question: the addition and subtraction facts the solutions
        use (operands to 10, counts to 40), as equations and as one-step stories ("Tom had 7
        apples and bought 5 more, so Tom had 12 apples.")."""
        facts = [(a, b) for a in range(0, 4 * MAX_NUMBER + 1) for b in range(1, MAX_NUMBER + 1)]
        rng.shuffle(facts)
        docs = []
        for i in range(0, len(facts), 8):
            lines = []
            for a, b in facts[i:i + 8]:
                if b <= a and rng.random() < 0.5:
                    lines.append(f"{a} - {b} = {a - b}.")
                else:
                    lines.append(f"{a} + {b} = {a + b}.")
            docs.append(" ".join(lines))
        for _ in range(len(docs)):
            name, _pronoun = rng.choice(PEOPLE)
            items, a = rng.choice(ITEMS), rng.randint(1, 3 * MAX_NUMBER)
            if rng.random() < 0.5:
                b = rng.randint(1, MAX_NUMBER)
                verb = rng.choice(("bought", "found", "got", "received"))
                docs.append(f"{name} had {a} {items} and {verb} {b} more, so {name} had {a + b} {items}.")
            else:
                b = rng.randint(1, min(MAX_NUMBER, a))
                verb = rng.choice(("gave away", "lost", "sold", "used"))
                docs.append(f"{name} had {a} {items} and {verb} {b}, so {name} had {a - b} {items} left.")
        rng.shuffle(docs)
        return docs

    def extract(self, text: str) -> float | None:
        """The number after the last "#### " (commas stripped), None when absent or unparsable."""
        matches = _ANSWER.findall(text)
        return parse_number(matches[-1]) if matches else None

    def score(self, examples: list[Example], completions: list[str]) -> list[Scored]:
        """Correct when the extracted number equals the gold answer numerically."""
        out = []
        for ex, text in zip(examples, completions):
            value, gold = self.extract(text), parse_number(str(ex["answer"]))
            correct = value is not None and gold is not None and abs(value - gold) < 1e-9
            out.append(Scored(float(correct), value, {}))
        return out

    def summarize(self, examples: list[Example], scored: list[Scored]) -> dict[str, float]:
        """Accuracy over the split."""
        return {"accuracy": sum(s.correct for s in scored) / len(scored) if scored else 0.0}

    def trivial_baseline(self, train: list[Example], test: list[Example]) -> dict[str, Any]:
        """Always answer the most frequent train answer."""
        answer = Counter(ex["answer"] for ex in train).most_common(1)[0][0]
        hits = sum(parse_number(ex["answer"]) == parse_number(answer) for ex in test)
        return {"name": f"most frequent train answer ({answer})", "score": hits / len(test) if test else 0.0}

    def instance_prompt(self, rng: random.Random) -> str:
        """Whole examples start with the question."""
        return "Question:"

    def parse_instance(self, text: str) -> Example | None:
        """Split a written example at "\\nAnswer:"; its answer is the number after "####"."""
        head, sep, completion = text.partition("\nAnswer:")
        if not sep or not head.startswith("Question: "):
            return None
        value = self.extract(completion)
        answer = None if value is None else str(int(value) if value.is_integer() else value)
        return {"prompt": head + sep, "completion": completion, "answer": answer}

    def verify_instances(self, examples: list[Example]) -> list[bool]:
        """Built-in data: well-formed, and the worked solution recomputes. Every step "a op b = c."
        is right, each step starts from the previous result, the operands are the question's numbers
        in order, and the last result is the `####` answer. Hub data (GSM8K's free-form solutions):
        the checks alone."""
        out = []
        for ex in examples:
            ok = all(self.checks(ex).values())
            if ok and self.source == "builtin":
                ok = _chain_recomputes(ex["prompt"], ex["completion"], self.extract(ex["completion"]))
            out.append(ok)
        return out

    def checks(self, example: Example) -> dict[str, bool]:
        """Prompt is one question in format (built-in data: ending in "?"); the completion ends in a
        parsable "#### <number>"."""
        prompt, completion = example.get("prompt") or "", example.get("completion") or ""
        fmt = _PROMPT if self.source == "builtin" else _HUB_PROMPT
        return {"prompt_format": bool(fmt.match(prompt)), "answer_parses": self.extract(completion) is not None}
