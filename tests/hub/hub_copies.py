"""Small local copies of the paper's datasets, laid out like their hub repos.

Each copy is a directory with the repo's dataset card (README.md, whose YAML `configs:` block maps
config names and splits to parquet files, as on the hub) and parquet files with the hub's columns
and feature types, so the real `datasets.load_dataset(path, name, split=...)` reads it exactly as it
reads the hub repo. The rows are written for these tests (not copied from the datasets); they
reproduce the schemas and the quirks the adapters must handle: hidden labels, "1,200"-style
answers, unanswerable questions, MBPP's tabs, CRLF line ends, module constants, helper functions
and classes, and rows that cannot become a HumanEval-like problem. They also hold the real data's
quirks that the families' validity rules for built-in data reject (test_hub_checks.py): answers
longer than the built-in bounds (a 270-character GSM8K solution, a 60-character NQ answer, a long
SQuAD span, a long CommonsenseQA option), GSM8K questions that do not end in "?", SQuAD answers that
end inside a word ("hive" of "hive's"), and HumanEval/MBPP prompts of any shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset, Features, List, Value

S = Value("string")

# ----- tau/commonsense_qa (config "default": data/<split>-00000-of-00001.parquet) -------------------
CSQA_FEATURES = Features({
    "id": S, "question": S, "question_concept": S,
    "choices": {"label": List(S), "text": List(S)}, "answerKey": S,
})


def _csqa(id_: str, question: str, concept: str, texts: list[str], key: str, labels: str = "ABCDE") -> dict:
    return {"id": id_, "question": question, "question_concept": concept,
            "choices": {"label": list(labels), "text": texts}, "answerKey": key}


CSQA = {"default": {
    "train": [
        # an option longer than the built-in data's (the built-in completion bound is 40 characters)
        _csqa("t1", "Where would you put a plate after washing it?", "plate",
              ["in the cupboard above the kitchen sink, with the cups", "garden", "river", "oven", "car"], "A"),
        _csqa("t2", "What do people do to relax\non a Sunday?", "relax",
              ["work", "take a nap", "run a marathon", "pay taxes", "shout"], "B"),
        # labels listed out of order: the adapter must order the options A-E
        _csqa("t3", "What does a bird use to fly?", "bird",
              ["feet", "beak", "wings", "tail", "eyes"], "C", labels="EDCBA"),
    ],
    "validation": [
        _csqa("v1", "Where is a good place to keep milk cold?", "milk",
              ["oven", "table", "fridge", "sun", "pocket"], "C"),
        _csqa("v2", "What might a tired person want?", "tired",
              ["coffee", "bed", "shoes", "music", "noise"], "B"),
    ],
    # the hub's test split: labels hidden (answerKey is "")
    "test": [_csqa("x1", "What is a hammer for?", "hammer", ["nails", "soup", "sleep", "rain", "ink"], "")],
}}

# ----- openai/gsm8k (configs "main", "socratic": <config>/<split>-00000-of-00001.parquet) -----------
GSM8K_FEATURES = Features({"question": S, "answer": S})
GSM8K = {
    "main": {
        "train": [
            {"question": "Ann has 3 apples and buys 4 more. How many apples does she have?",
             "answer": "Ann has 3 + 4 = <<3+4=7>>7 apples.\n#### 7"},
            {"question": "A box holds 12 eggs. How many eggs are in 100 boxes?",
             "answer": "There are 12 * 100 = <<12*100=1200>>1200 eggs.\n#### 1,200"},
            # no "?" at the end, and a solution longer than any built-in one (over 200 characters)
            {"question": "Tom had 10 cards and gave away 4. Then he bought 4 packs of 5 cards and gave half "
                         "of them to his sister. Find the number of cards Tom has now.",
             "answer": "Tom gave away 4 cards, so he had 10 - 4 = <<10-4=6>>6 cards left.\n"
                       "The 4 packs held 4 * 5 = <<4*5=20>>20 cards.\n"
                       "He gave half of them away, so he kept 20 / 2 = <<20/2=10>>10 cards from the packs.\n"
                       "In total Tom has 6 + 10 = <<6+10=16>>16 cards now.\n#### 16"},
        ],
        "test": [
            {"question": "Mia reads 5 pages a day for 6 days.\nHow many pages does she read?",
             "answer": "5 * 6 = <<5*6=30>>30 pages.\n#### 30"},
            {"question": "A shirt costs $20 and is 25% off. Work out its price now.",
             "answer": "The discount is 20 * 0.25 = $<<20*0.25=5>>5.\nThe price is 20 - 5 = $<<20-5=15>>15.\n#### 15"},
        ],
    },
    # another config with other rows: `name: main` must pick the right one
    "socratic": {"train": [{"question": "Q?", "answer": "How many? ** 1\n#### 1"}],
                 "test": [{"question": "Q?", "answer": "#### 1"}]},
}

# ----- google-research-datasets/nq_open (config "nq_open") ------------------------------------------
NQ_FEATURES = Features({"question": S, "answer": List(S)})
NQ = {"nq_open": {
    "train": [
        {"question": "who wrote the novel moby dick", "answer": ["Herman Melville"]},
        # an answer longer than the built-in data's (40 characters)
        {"question": "what is the full name of unesco",
         "answer": ["United Nations Educational, Scientific and Cultural Organization", "UNESCO"]},
        # also a validation question: train must drop it
        {"question": "how many legs does a spider have", "answer": ["eight"]},
    ],
    "validation": [
        {"question": "how many legs does a spider have", "answer": ["eight", "8"]},
        {"question": "when did the first man walk on the moon", "answer": ["1969", "July 20, 1969"]},
    ],
}}

# ----- rajpurkar/squad_v2 (config "squad_v2") -------------------------------------------------------
SQUAD_FEATURES = Features({
    "id": S, "title": S, "context": S, "question": S,
    "answers": {"text": List(S), "answer_start": List(Value("int32"))},
})
_BEES = ("Honey bees live in colonies. A colony has one queen, who lays the eggs, and thousands of workers.\n"
         "Workers collect nectar from flowers. The queen's eggs hatch into larvae that young nurse workers feed "
         "with royal jelly for three days. Guards watch the hive's entrance.")


def _span(*texts: str) -> dict[str, list]:
    """SQuAD's answers struct: each text with its character offset in the passage."""
    return {"text": list(texts), "answer_start": [_BEES.index(t) for t in texts]}


SQUAD = {"squad_v2": {
    "train": [
        {"id": "s1", "title": "Bees", "context": _BEES, "question": "Who lays the eggs?",
         "answers": _span("one queen")},
        {"id": "s2", "title": "Bees", "context": _BEES, "question": "What do workers collect?",
         "answers": _span("nectar")},
        {"id": "s3", "title": "Bees", "context": _BEES, "question": "What colour is the queen?",
         "answers": {"text": [], "answer_start": []}},
        # a span longer than the built-in data's (40 characters), and one ending inside a word
        {"id": "s4", "title": "Bees", "context": _BEES, "question": "What do the eggs hatch into?",
         "answers": _span("larvae that young nurse workers feed with royal jelly")},
        {"id": "s5", "title": "Bees", "context": _BEES, "question": "Guards watch the entrance of what?",
         "answers": _span("hive")},
    ],
    "validation": [
        {"id": "d1", "title": "Bees", "context": _BEES, "question": "Where do honey bees live?",
         "answers": _span("in colonies", "colonies", "colonies")},
        {"id": "d2", "title": "Bees", "context": _BEES, "question": "How long does a queen live?",
         "answers": {"text": [], "answer_start": []}},
    ],
}}

# ----- openai/openai_humaneval (config "openai_humaneval", split "test") ----------------------------
HUMANEVAL_FEATURES = Features({"task_id": S, "prompt": S, "canonical_solution": S, "test": S, "entry_point": S})
HUMANEVAL = {"openai_humaneval": {"test": [
    {"task_id": "HumanEval/0",
     "prompt": 'from typing import List\n\n\ndef count_evens(numbers: List[int]) -> int:\n'
               '    """ Count the even numbers in the list.\n    >>> count_evens([1, 2, 4])\n    2\n    """\n',
     "canonical_solution": "    return sum(1 for n in numbers if n % 2 == 0)\n",
     "test": "\n\nMETADATA = {'author': 'tests'}\n\n\ndef check(candidate):\n"
             "    assert candidate([1, 2, 4]) == 2\n    assert candidate([]) == 0\n    assert candidate([1, 3]) == 0\n\n",
     "entry_point": "count_evens"},
    # a helper defined in the prompt, as in HumanEval/10 or /38
    {"task_id": "HumanEval/1",
     "prompt": 'def is_vowel(c: str) -> bool:\n    """ Whether c is a vowel. """\n    return c.lower() in "aeiou"\n\n\n'
               'def strip_vowels(text: str) -> str:\n    """ Remove the vowels of text.\n'
               "    >>> strip_vowels('Banana')\n    'Bnn'\n    \"\"\"\n",
     "canonical_solution": "    return ''.join(c for c in text if not is_vowel(c))\n",
     "test": "def check(candidate):\n    assert candidate('Banana') == 'Bnn'\n    assert candidate('') == ''\n"
             "    assert candidate('xyz') == 'xyz'\n",
     "entry_point": "strip_vowels"},
]}}

# ----- google-research-datasets/mbpp (configs "full" and "sanitized") -------------------------------
MBPP_FEATURES = Features({
    "task_id": Value("int32"), "text": S, "code": S, "test_list": List(S), "test_setup_code": S,
    "challenge_test_list": List(S),
})


def _mbpp(task_id: int, text: str, code: str, tests: list[str], setup: str = "") -> dict[str, Any]:
    return {"task_id": task_id, "text": text, "code": code, "test_list": tests, "test_setup_code": setup,
            "challenge_test_list": []}


MBPP_FULL_TRAIN = [
    # tabs, CRLF line ends and module-level constants before the function (like MBPP's task 1)
    _mbpp(601, "Write a function to find the sum of the main diagonal of a 3 x 3 grid.",
          "R = 3\r\nC = 3\r\ndef diagonal_sum(grid): \r\n\ttotal = 0\r\n\tfor i in range(R): \r\n"
          "\t\ttotal += grid[i][i] \r\n\treturn total",
          ["assert diagonal_sum([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == 15",
           "assert diagonal_sum([[0, 0, 0], [0, 0, 0], [0, 0, 0]]) == 0",
           "assert diagonal_sum([[2, 1, 1], [1, 2, 1], [1, 1, 2]]) == 6"]),
    # helpers before the entry point, two-space indentation; the asserts wrap the call in set()
    _mbpp(602, "Write a python function to find the shared elements of two lists.",
          "def to_set(xs):\r\n  return set(xs)\r\ndef shared(a, b):\r\n  return tuple(sorted(to_set(a) & to_set(b)))",
          ["assert set(shared([1, 2, 3], [2, 3, 4])) == set((2, 3))",
           "assert shared([1], [2]) == ()",
           "assert shared([5, 5, 6], [5]) == (5,)"]),
    # a class used by the asserts, an import, a docstring in the body, a print call at the end
    _mbpp(603, "Write a function to find the longest chain of pairs (a, b) where b < c for consecutive pairs.",
          "import math\nclass Pair(object):\n    def __init__(self, a, b):\n        self.a = a\n        self.b = b\n"
          "def max_chain_length(arr, n):\n    \"\"\"Greedy after sorting by the second element.\"\"\"\n"
          "    arr = sorted(arr, key=lambda p: p.b)\n    count, end = 0, -math.inf\n    for p in arr:\n"
          "        if p.a > end:\n            count += 1\n            end = p.b\n    return count\n"
          "print(max_chain_length([Pair(1, 2)], 1))",
          ["assert max_chain_length([Pair(5, 24), Pair(15, 25), Pair(27, 40), Pair(50, 60)], 4) == 3",
           "assert max_chain_length([Pair(1, 2), Pair(3, 4), Pair(5, 6), Pair(7, 8)], 4) == 4",
           "assert max_chain_length([Pair(19, 10), Pair(11, 12), Pair(13, 14), Pair(15, 16), Pair(31, 54)], 5) == 5"]),
    # test_setup_code defines what the asserts use; a description with a backslash and quotes
    _mbpp(604, 'Write a function that splits a string on "\\n" and counts the lines.',
          "def count_lines(s):\n    return len(s.split('\\n'))",
          ["assert count_lines(TEXT) == 3", "assert count_lines('a') == 1", "assert count_lines('') == 1"],
          setup="TEXT = 'x\\ny\\nz'"),
    # Python 2: cannot become a problem; skipped (counted, listed), not an error
    _mbpp(605, "Write a function to print hello.", "def hello():\n    print 'hello'\n    return 1",
          ["assert hello() == 1", "assert hello() == 1", "assert hello() == 1"]),
    # the asserts call a function the code does not define: skipped
    _mbpp(606, "Write a function to add one.", "def add_one(x):\n    return x + 1",
          ["assert plus_one(1) == 2", "assert plus_one(2) == 3", "assert plus_one(3) == 4"]),
]
MBPP = {
    "full": {
        "train": MBPP_FULL_TRAIN,
        "test": [_mbpp(11, "Write a function to double x.", "def double(x):\n  return 2 * x",
                       ["assert double(2) == 4", "assert double(0) == 0", "assert double(-1) == -2"])],
        "validation": [_mbpp(511, "Write a function to negate x.", "def neg(x):\n  return -x",
                             ["assert neg(2) == -2", "assert neg(0) == 0", "assert neg(-1) == 1"])],
        "prompt": [_mbpp(2, "Write a function to square x.", "def sq(x):\n  return x * x",
                         ["assert sq(2) == 4", "assert sq(0) == 0", "assert sq(-1) == 1"])],
    },
}
# the "sanitized" config has other columns (prompt instead of text): `name: full` must not read it
MBPP_SANITIZED_FEATURES = Features({
    "source_file": S, "task_id": Value("int32"), "prompt": S, "code": S, "test_imports": List(S), "test_list": List(S),
})
MBPP_SANITIZED = {"sanitized": {"train": [
    {"source_file": "x.py", "task_id": 602, "prompt": "Find shared elements.", "code": "def f():\n  pass",
     "test_imports": [], "test_list": ["assert f() is None"]}]}}


def write_repo(root: Path, configs: dict[str, dict[str, list[dict]]], features: dict[str, Features],
               data_dir: dict[str, str] | None = None) -> Path:
    """A directory laid out like a hub dataset repo: <dir>/<split>-00000-of-00001.parquet per config
    and split, and a README.md whose `configs:` block declares them (the hub's dataset card format)."""
    root.mkdir(parents=True, exist_ok=True)
    card = []
    for config, splits in configs.items():
        folder = (data_dir or {}).get(config, config)
        files = []
        for split, rows in splits.items():
            out = root / folder / f"{split}-00000-of-00001.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            Dataset.from_list(rows, features=features[config]).to_parquet(str(out))
            files.append({"split": split, "path": f"{folder}/{split}-*"})
        card.append({"config_name": config, "data_files": files})
    (root / "README.md").write_text("---\n" + yaml.safe_dump({"configs": card}, sort_keys=False) + "---\n")
    return root


def write_all(base: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every local copy under `base`; returns prepare.hub overrides pointing the five tasks at them."""
    csqa = write_repo(base / "commonsense_qa", CSQA, {"default": CSQA_FEATURES}, data_dir={"default": "data"})
    gsm8k = write_repo(base / "gsm8k", GSM8K, {"main": GSM8K_FEATURES, "socratic": GSM8K_FEATURES})
    nq = write_repo(base / "nq_open", NQ, {"nq_open": NQ_FEATURES})
    squad = write_repo(base / "squad_v2", SQUAD, {"squad_v2": SQUAD_FEATURES})
    humaneval = write_repo(base / "openai_humaneval", HUMANEVAL, {"openai_humaneval": HUMANEVAL_FEATURES})
    mbpp = write_repo(base / "mbpp", {**MBPP, **MBPP_SANITIZED},
                      {"full": MBPP_FEATURES, "sanitized": MBPP_SANITIZED_FEATURES})
    both = lambda path: {"train": {"path": str(path)}, "test": {"path": str(path)}}  # noqa: E731
    return {
        "commonsense": both(csqa),
        "math": both(gsm8k),
        "factual": both(nq),
        "reading": both(squad),
        "code": {"train": {"path": str(mbpp)}, "test": {"path": str(humaneval)}},
    }
