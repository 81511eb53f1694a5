"""`factual`: Natural-Questions-like closed-book questions about a generated world.

The world (fixed, like a benchmark): 500 people (birth city, profession), 130 companies (founding
year, headquarters city, founder) and 60 countries (capital): 1,450 facts, all with made-up names.
The pretraining corpus (`corpus`, synthmix.pretrain) states every fact in prose, reworded on every
pass ("Mara Velin was born in Dorvik.", "Dorvik is where Mara Velin was born."). The experiment's
seed sets aside 1,000 of the facts for the test split; the train split asks the other 450, each in
five phrasings. A test question therefore asks a fact that fine-tuning never shows: the model can
answer it only from what pretraining taught, as Pythia answers Natural Questions.

Prompt and completion::

    Question: In which city was Mara Velin born?
    Answer:                                                  -> " Dorvik"

Scoring: exact match after SQuAD normalisation, max over the aliases in ``answers`` (a person is
also accepted by surname).
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from typing import Any, Literal

from synthmix.tasks.base import Example, Scored, TaskFamily, register
from synthmix.tasks.text import best_over_golds, first_line, unique_words

N_PEOPLE, N_COMPANIES, N_COUNTRIES, N_CITIES = 500, 130, 60, 60
#: facts only the test split asks (drawn from the experiment's seed): as in Natural Questions, most
#: of what the test asks was never in fine-tuning
N_TEST_FACTS = 1000
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

#: the corpus's prose for each relation ({s} subject, {o} answer): none of it is a question
STATEMENTS: dict[str, tuple[str, ...]] = {
    "birth_city": ("{s} was born in {o}.", "{o} is where {s} was born.", "{s} comes from {o}.",
                   "The hometown of {s} is {o}."),
    "profession": ("{s} works as a {o}.", "{s} is a {o} by trade.", "By profession, {s} is a {o}.",
                   "{s} earns a living as a {o}."),
    "founded": ("{s} was founded in {o}.", "{s} was established in {o}.", "In {o}, {s} was founded.",
                "{s} has existed since {o}."),
    "headquarters": ("{s} is headquartered in {o}.", "The headquarters of {s} are in {o}.", "{s} is based in {o}.",
                     "{o} is home to {s}."),
    "founder": ("{s} was founded by {o}.", "{o} founded {s}.", "The founder of {s} is {o}.", "{o} started {s}."),
    "capital": ("The capital of {s} is {o}.", "{o} is the capital of {s}.", "{s} has {o} as its capital.",
                "The government of {s} sits in {o}."),
}

_PROMPT = re.compile(r"^Question: [^\n]+\?\nAnswer:$")

Fact = tuple[str, str, list[str]]  # (relation, subject, answer aliases; the first is the gold completion)


@functools.cache
def world() -> tuple[Fact, ...]:
    """Every fact of the world, in a fixed order (the same for every seed: only the split varies)."""
    rng = random.Random("factual:world")
    taken: set[str] = set()
    cities = unique_words(rng, N_CITIES, taken)
    firsts, lasts = unique_words(rng, 120, taken), unique_words(rng, 120, taken)
    people = [f"{f} {l}" for f, l in rng.sample([(f, l) for f in firsts for l in lasts], N_PEOPLE)]
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
    return tuple(facts)


def split_facts(seed: int) -> tuple[list[Fact], list[Fact]]:
    """(train, test) facts: `N_TEST_FACTS` of the world, drawn from the seed, are the test split's."""
    facts = list(world())
    random.Random(f"factual:split:{seed}").shuffle(facts)
    return facts[N_TEST_FACTS:], facts[:N_TEST_FACTS]


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
        """`n` questions over the split's facts: every fact once (in one of its phrasings) before any
        is asked again, in another phrasing."""
        facts = split_facts(seed)[0 if split == "train" else 1]
        rng = random.Random(f"{self.name}:{split}:{seed}")
        phrasings = {fact[1] + fact[0]: rng.sample(range(len(TEMPLATES[fact[0]])), len(TEMPLATES[fact[0]]))
                     for fact in facts}
        rows: list[Example] = []
        order: list[Fact] = []
        rounds = 0
        for i in range(n):
            if not order:  # every fact once before any repeats, each round in a new phrasing
                order = rng.sample(facts, len(facts))
                rounds += 1
            relation, subject, answers = fact = order.pop()
            t = phrasings[subject + relation][(rounds - 1) % len(TEMPLATES[relation])]
            rows.append({
                "id": f"{self.name}-{split}-{i:06d}",
                "prompt": f"Question: {TEMPLATES[relation][t].format(s=subject)}\nAnswer:",
                "completion": f" {answers[0]}",
                "answers": list(answers),
                "relation": relation,
                "subject": subject,
            })
        return rows

    def corpus(self, rng: random.Random) -> list[str]:
        """One short document per person, company and country, every fact of it in a statement
        drawn afresh (the sentences in random order)."""
        by_subject: dict[str, list[Fact]] = {}
        for fact in world():
            by_subject.setdefault(fact[1], []).append(fact)
        docs = []
        for subject, facts in by_subject.items():
            sentences = [rng.choice(STATEMENTS[rel]).format(s=subj, o=answers[0]) for rel, subj, answers in facts]
            rng.shuffle(sentences)
            docs.append(" ".join(sentences))
        return docs

    def extract(self, text: str) -> str | None:
        """The completion's first line, stripped; None when empty."""
        return first_line(text) or None

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
