"""`factual`: Natural-Questions-like closed-book questions about a generated world.

The world (drawn from the seed): 50 people (birth city, profession), 30 companies (founding
year, headquarters city, founder) and 20 countries (capital): 210 facts, all with made-up names.
Each relation has five question phrasings; per fact one phrasing is held out for the test split
and the train split states the fact with the other four. A test question therefore asks a fact
the model can only know from training, in words it has not seen for that fact.

Prompt and completion::

    Question: In which city was Mara Velin born?
    Answer:                                                  -> " Dorvik"

Scoring: exact match after SQuAD normalisation, max over the aliases in ``answers`` (a person is
also accepted by surname).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, Literal

from synthmix.tasks.base import Example, Scored, TaskFamily, register
from synthmix.tasks.text import best_over_golds, unique_words

N_PEOPLE, N_COMPANIES, N_COUNTRIES, N_CITIES = 50, 30, 20, 24
PROFESSIONS = ("painter", "baker", "doctor", "farmer", "teacher", "pilot", "nurse", "writer", "singer",
               "lawyer", "chef", "sailor")
COMPANY_SUFFIXES = ("Corp", "Labs", "Works", "Systems")
YEARS = tuple(range(1950, 2000))
TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_city": ("Where was {s} born?", "In which city was {s} born?", "What is the birthplace of {s}?",
                   "{s} was born in which city?", "Which city is the hometown of {s}?"),
    "profession": ("What does {s} do for a living?", "What is the job of {s}?", "What is the profession of {s}?",
                   "{s} works as what?", "What kind of work does {s} do?"),
    "founded": ("When was {s} founded?", "In what year was {s} founded?", "What year was {s} established?",
                "{s} was founded in which year?", "In which year did {s} start?"),
    "headquarters": ("Where is {s} based?", "Where are the headquarters of {s}?", "In which city is {s} headquartered?",
                     "{s} is based in which city?", "What city is home to {s}?"),
    "founder": ("Who founded {s}?", "Who is the founder of {s}?", "{s} was founded by whom?", "Who started {s}?",
                "Who created the company {s}?"),
    "capital": ("What is the capital of {s}?", "Which city is the capital of {s}?",
                "{s} has which city as its capital?",
                "What city is the capital of {s}?", "Where does the government of {s} sit?"),
}

_PROMPT = re.compile(r"^Question: [^\n]+\?\nAnswer:$")

Fact = tuple[str, str, list[str]]  # (relation, subject, answer aliases; the first is the gold completion)


def world(seed: int) -> list[Fact]:
    """Every fact of the seed's world, in a fixed order."""
    rng = random.Random(f"factual:world:{seed}")
    taken: set[str] = set()
    cities = unique_words(rng, N_CITIES, taken)
    firsts, lasts = unique_words(rng, N_PEOPLE, taken), unique_words(rng, N_PEOPLE, taken)
    people = [f"{f} {l}" for f, l in zip(firsts, lasts)]
    companies = [f"{w} {rng.choice(COMPANY_SUFFIXES)}" for w in unique_words(rng, N_COMPANIES, taken)]
    countries = unique_words(rng, N_COUNTRIES, taken, syllables=3)
    facts: list[Fact] = []
    for person in people:
        facts.append(("birth_city", person, [rng.choice(cities)]))
        facts.append(("profession", person, [rng.choice(PROFESSIONS)]))
    for company in companies:
        founder = rng.choice(people)
        facts.append(("founded", company, [str(rng.choice(YEARS))]))
        facts.append(("headquarters", company, [rng.choice(cities)]))
        facts.append(("founder", company, [founder, founder.split()[1]]))
    for country, capital in zip(countries, rng.sample(cities, N_COUNTRIES)):
        facts.append(("capital", country, [capital]))
    return facts


def _pairs(seed: int) -> tuple[list[tuple[int, Fact]], list[tuple[int, Fact]]]:
    """(train, test) lists of (template index, fact): one held-out phrasing per fact."""
    rng = random.Random(f"factual:holdout:{seed}")
    train, test = [], []
    for fact in world(seed):
        held_out = rng.randrange(len(TEMPLATES[fact[0]]))
        for t in range(len(TEMPLATES[fact[0]])):
            (test if t == held_out else train).append((t, fact))
    return train, test


@register
class Factual(TaskFamily):
    """Closed-book questions whose answers the train split states in other words."""

    name = "factual"
    order = 2
    group = "grounded"
    paper_sensitivity = -0.13  # the paper's task sensitivity (protocol.md)
    hub_defaults = {
        "train": {"path": "google-research-datasets/nq_open", "split": "train", "format": "nq_open"},
        "test": {"path": "google-research-datasets/nq_open", "split": "validation", "format": "nq_open"},
    }
    hub_formats = ("nq_open",)
    kind = "generate"
    score_name = "exact_match"
    max_new_tokens = 16  # longest gold answer (a person's name) is ~5 tokens
    completion_chars = (2, 40)

    def build(self, split: Literal["train", "test"], n: int, seed: int) -> list[Example]:
        """`n` questions cycling over the split's (phrasing, fact) pairs in shuffled order."""
        pool = _pairs(seed)[0 if split == "train" else 1]
        rng = random.Random(f"{self.name}:{split}:{seed}")
        rows: list[Example] = []
        order: list[tuple[int, Fact]] = []
        for i in range(n):
            if not order:  # every pair once before any repeats
                order = rng.sample(pool, len(pool))
            t, (relation, subject, answers) = order.pop()
            rows.append({
                "id": f"{self.name}-{split}-{i:06d}",
                "prompt": f"Question: {TEMPLATES[relation][t].format(s=subject)}\nAnswer:",
                "completion": f" {answers[0]}",
                "answers": list(answers),
                "relation": relation,
                "subject": subject,
            })
        return rows

    def extract(self, text: str) -> str | None:
        """The completion's first line, stripped; None when empty."""
        line = text.strip().split("\n", 1)[0].strip()
        return line or None

    def score(self, examples: list[Example], completions: list[str]) -> list[Scored]:
        """Exact match after SQuAD normalisation, max over the gold aliases."""
        out = []
        for ex, text in zip(examples, completions):
            pred = self.extract(text)
            em = best_over_golds(pred, ex["answers"])[0] if pred is not None else 0.0
            out.append(Scored(em, pred, {}))
        return out

    def summarize(self, examples: list[Example], scored: list[Scored]) -> dict[str, float]:
        """Exact match over the split."""
        return {"exact_match": sum(s.correct for s in scored) / len(scored) if scored else 0.0}

    def trivial_baseline(self, train: list[Example], test: list[Example]) -> dict[str, Any]:
        """Always answer the most frequent train answer."""
        answer = Counter(ex["answers"][0] for ex in train).most_common(1)[0][0]
        hits = sum(best_over_golds(answer, ex["answers"])[0] for ex in test)
        return {"name": f"most frequent train answer ({answer})", "score": hits / len(test) if test else 0.0}

    def instance_prompt(self, rng: random.Random) -> str:
        """Whole examples start with the question."""
        return "Question:"

    def parse_instance(self, text: str) -> Example | None:
        """Split a written example at "\\nAnswer:"; its answer is what follows."""
        head, sep, completion = text.partition("\nAnswer:")
        if not sep or not head.startswith("Question: "):
            return None
        answer = self.extract(completion)
        return {"prompt": head + sep, "completion": completion, "answers": [answer] if answer else None}

    def checks(self, example: Example) -> dict[str, bool]:
        """Prompt is one question in format; the answer is a single non-empty line."""
        prompt, completion = example.get("prompt") or "", example.get("completion") or ""
        return {
            "prompt_format": bool(_PROMPT.match(prompt)),
            "non_empty_answer": self.extract(completion) is not None,
            "single_line": "\n" not in completion.strip(),
        }
