'''`code`: HumanEval-like function completion, checked by running unit tests in the sandbox.

Twenty families of small functions ("return x plus K", "count the even numbers in xs", "reverse
the string s"...), each with several function names, parameter names and constants K. The prompt
is the signature and docstring, the completion the body, as in HumanEval::

    def add_three(x):
        """Return x plus 3."""
                                                             -> "    return x + 3\\n"

Unlike the other families the completion starts with four spaces of indentation, not one space.
``tests`` holds the asserts (``assert add_three(1) == 4`` ...); a completion passes when
`synthmix.sandbox.check_function` saw every assert run to its end against prompt + body, the
function running in its own jailed process (an exit, a crash or an object that claims equality
with anything fails), with ``==`` comparing type and value (``1.0`` and ``True`` are not ``1``).
Train, test and the pretraining corpus (`corpus`: whole functions, a few to a file) are disjoint
parts of the (family, name, parameter, K) space of 5,280 functions: a stable hash of the prompt
decides (synthmix.tasks.text.partition), leaving 1,038 distinct test problems.
'''

from __future__ import annotations

import ast
import functools
import random
import re
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from synthmix.tasks.base import Example, Scored, TaskFamily, register
from synthmix.tasks.text import partition

if TYPE_CHECKING:
    from synthmix.params import Params

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
#: K as a word in function names: add_three, add_twenty_one
NUMBER_WORDS = _UNITS + tuple("twenty" + ("_" + _UNITS[u] if u else "") for u in range(10)) + ("thirty",)
INT_PARAMS = ("x", "n", "value", "num", "a", "number")
LIST_PARAMS = ("xs", "nums", "values", "arr", "data", "lst")
STR_PARAMS = ("s", "text", "word", "name", "string", "line")
WORDS = ("apple", "banana", "cherry", "hello", "world", "python", "orange", "tiger", "river", "stone")


@dataclass(frozen=True)
class Family:
    """One kind of function: names ({k} = K as a word), docstring and body ({p} = parameter, {K}),
    parameter kind, K range, and the reference implementation the asserts are computed from."""

    names: tuple[str, ...]
    doc: str
    body: str
    param: Literal["int", "list", "str"]
    ks: tuple[int, ...]
    ref: Callable[[Any, int], Any]


_LOOP_COUNT = "    count = 0\n    for item in {p}:\n        if {cond}:\n            count += 1\n    return count\n"
# K up to 30 (2-12 for products and divisibility): the space holds 5,000+ combinations, so the
# test side of the partition (one in five) has 1,000+ distinct problems
_K, _NO_K = tuple(range(1, 31)), (0,)
_SMALL_K = tuple(range(2, 13))
FAMILIES: tuple[Family, ...] = (
    Family(("add_{k}", "plus_{k}", "increase_by_{k}", "add_{k}_to"), "Return {p} plus {K}.",
           "    return {p} + {K}\n", "int", _K, lambda v, k: v + k),
    Family(("subtract_{k}", "minus_{k}", "decrease_by_{k}", "take_away_{k}"), "Return {p} minus {K}.",
           "    return {p} - {K}\n", "int", _K, lambda v, k: v - k),
    Family(("times_{k}", "multiply_by_{k}", "scale_by_{k}", "mul_{k}"), "Return {p} times {K}.",
           "    return {p} * {K}\n", "int", _SMALL_K, lambda v, k: v * k),
    Family(("divisible_by_{k}", "is_multiple_of_{k}", "check_div_{k}", "divides_{k}"),
           "Return True if {p} is divisible by {K}.", "    return {p} % {K} == 0\n", "int", _SMALL_K,
           lambda v, k: v % k == 0),
    Family(("greater_than_{k}", "above_{k}", "is_over_{k}", "exceeds_{k}"), "Return True if {p} is greater than {K}.",
           "    return {p} > {K}\n", "int", _K, lambda v, k: v > k),
    Family(("square", "squared", "self_product", "power_two"), "Return {p} squared.", "    return {p} * {p}\n",
           "int", _NO_K, lambda v, k: v * v),
    Family(("absolute", "magnitude", "abs_value", "distance_from_zero"), "Return the absolute value of {p}.",
           "    return abs({p})\n", "int", _NO_K, lambda v, k: abs(v)),
    Family(("largest", "max_element", "biggest", "find_max"), "Return the largest element of {p}.",
           "    return max({p})\n", "list", _NO_K, lambda v, k: max(v)),
    Family(("smallest", "min_element", "lowest", "find_min"), "Return the smallest element of {p}.",
           "    return min({p})\n", "list", _NO_K, lambda v, k: min(v)),
    Family(("total", "sum_all", "add_all", "list_sum"), "Return the sum of {p}.", "    return sum({p})\n",
           "list", _NO_K, lambda v, k: sum(v)),
    Family(("count_even", "num_even", "even_count", "how_many_even"), "Count the even numbers in {p}.",
           _LOOP_COUNT.replace("{cond}", "item % 2 == 0"), "list", _NO_K, lambda v, k: sum(x % 2 == 0 for x in v)),
    Family(("count_above_{k}", "num_over_{k}", "count_greater_{k}", "how_many_above_{k}"),
           "Count the elements of {p} greater than {K}.", _LOOP_COUNT.replace("{cond}", "item > {K}"), "list", _K,
           lambda v, k: sum(x > k for x in v)),
    Family(("keep_below_{k}", "filter_under_{k}", "less_than_{k}", "drop_from_{k}"),
           "Return the elements of {p} less than {K}.", "    return [item for item in {p} if item < {K}]\n",
           "list", _K, lambda v, k: [x for x in v if x < k]),
    Family(("add_{k}_each", "shift_by_{k}", "raise_all_{k}", "bump_{k}"), "Add {K} to every element of {p}.",
           "    return [item + {K} for item in {p}]\n", "list", _K, lambda v, k: [x + k for x in v]),
    Family(("reverse", "reversed_text", "backwards", "flip"), "Reverse the string {p}.", "    return {p}[::-1]\n",
           "str", _NO_K, lambda v, k: v[::-1]),
    Family(("shout", "to_upper", "uppercase", "capitals"), "Return {p} in upper case.", "    return {p}.upper()\n",
           "str", _NO_K, lambda v, k: v.upper()),
    Family(("length", "count_chars", "size", "text_length"), "Return the length of {p}.", "    return len({p})\n",
           "str", _NO_K, lambda v, k: len(v)),
    Family(("first_{k}", "prefix_{k}", "head_{k}", "start_{k}"), "Return the first {K} characters of {p}.",
           "    return {p}[:{K}]\n", "str", tuple(range(1, 6)), lambda v, k: v[:k]),
    Family(("repeat_{k}", "copies_{k}", "echo_{k}", "multiply_text_{k}"), "Return {p} repeated {K} times.",
           "    return {p} * {K}\n", "str", (2, 3, 4), lambda v, k: v * k),
    Family(("count_a", "num_a", "a_count", "letter_a"), "Count the letter a in {p}.", "    return {p}.count('a')\n",
           "str", _NO_K, lambda v, k: v.count("a")),
)
PARAMS = {"int": INT_PARAMS, "list": LIST_PARAMS, "str": STR_PARAMS}
N_ASSERTS = 4

_SIGNATURE = re.compile(r'^def ([A-Za-z_]\w*)\(([A-Za-z_]\w*)\):\n    """[^\n]*"""\n')


def _inputs(family: Family, k: int, rng: random.Random) -> list[Any]:
    """N_ASSERTS distinct random arguments for `family`, redrawn until they tell the gold function
    apart from trivial ones: the results differ, and some integer argument is negative."""
    for _ in range(1000):
        args: list[Any] = []
        while len(args) < N_ASSERTS:
            if family.param == "int":  # around K, so comparisons with K go both ways
                arg: Any = rng.randint(-20, 20 + k)
            elif family.param == "list":
                arg = [rng.randint(-9, 19 + k) for _ in range(rng.randint(2, 6))]
            else:
                arg = rng.choice(WORDS)
            if arg not in args:
                args.append(arg)
        results = [family.ref(arg, k) for arg in args]
        negative = family.param == "str" or any(min(a) < 0 if isinstance(a, list) else a < 0 for a in args)
        if negative and any(r != results[0] for r in results):
            return args
    raise RuntimeError(f"no telling inputs for {family.names[0]!r} with K={k}")  # a family's K range is wrong


def _space() -> list[tuple[int, int, int, int]]:
    """Every (family, name, parameter, K) combination, as indices, in a fixed order."""
    return [(f, i, p, k) for f, fam in enumerate(FAMILIES) for i in range(len(fam.names))
            for p in range(len(PARAMS[fam.param])) for k in fam.ks]


def _problem(combo: tuple[int, int, int, int]) -> tuple[str, str, str]:
    """(entry point, prompt, gold body) of one combination."""
    f, i, p, k = combo
    fam = FAMILIES[f]
    param = PARAMS[fam.param][p]
    entry = fam.names[i].format(k=NUMBER_WORDS[k])
    doc = fam.doc.format(p=param, K=k)
    return entry, f'def {entry}({param}):\n    """{doc}"""\n', fam.body.format(p=param, K=k)


#: functions of the pretraining corpus per pass
CORPUS_FUNCTIONS = 150


@functools.cache
def _corpus_functions() -> list[str]:
    """Every function on the corpus's side of the space, as source."""
    return [prompt + body for _, prompt, body in (_problem(c) for c in _space()) if partition(prompt) == "corpus"]


def _own_tests(prompt: str) -> str | None:
    """The asserts the family would write for a built-in-format prompt: its docstring matched to a
    family's template (the parameter the signature's, K in the family's range), the inputs drawn
    from the prompt. None when no family writes that docstring."""
    m = _SIGNATURE.match(prompt)
    doc = re.match(r'^def \w+\(\w+\):\n    """([^\n]*)"""\n$', prompt)
    if m is None or doc is None:
        return None
    entry, param = m.group(1), m.group(2)
    for fam in FAMILIES:
        pattern = re.escape(fam.doc).replace(re.escape("{p}"), r"(?P<p>\w+)").replace(re.escape("{K}"), r"(?P<K>\d+)")
        found = re.fullmatch(pattern, doc.group(1))
        if found is None or found.group("p") != param or param not in PARAMS[fam.param]:
            continue
        k = int(found.group("K")) if "{K}" in fam.doc else 0
        if k not in fam.ks:
            continue
        rng = random.Random(f"code:own-tests:{prompt}")
        return "\n".join(f"assert {entry}({arg!r}) == {fam.ref(arg, k)!r}" for arg in _inputs(fam, k, rng))
    return None


def _entry_point(prompt: str) -> str | None:
    """The name of the function a prompt ends with (rows without an `entry_point` column)."""
    m = _SIGNATURE.match(prompt)
    if m:
        return m.group(1)
    try:
        last = ast.parse(prompt + "\n    pass\n").body[-1]
    except (SyntaxError, ValueError, IndexError):
        return None
    return last.name if isinstance(last, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def ends_with_open_function(prompt: str) -> bool:
    """Whether `prompt` is Python that stops where a top-level function's body begins: with a body
    of `pass` appended it parses, its last statement is that function, and before the `pass` the
    function holds nothing but its docstring (and imports: HumanEval/115 imports math before its
    docstring). Imports, helpers and constants may come before the function, as in HumanEval and
    the MBPP problems synthmix.tasks.hub builds."""
    if not prompt.strip():
        return False
    try:
        module = ast.parse(prompt + "\n    pass\n")
    except (SyntaxError, ValueError):
        return False
    last = module.body[-1] if module.body else None
    if not isinstance(last, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    *head, end = last.body
    return (isinstance(end, ast.Pass) and end.lineno > last.lineno
            and all(_is_string(node) or isinstance(node, (ast.Import, ast.ImportFrom)) for node in head))


def _is_string(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def program(prompt: str, body: str, tests: str) -> str:
    """The whole program, the function (prompt + body) then its asserts, for reading or running by
    hand; scoring runs the two apart (`Code.score`)."""
    return f"{prompt}{body.rstrip()}\n\n\n{tests}\n"


def solution(prompt: str, body: str) -> str:
    """What the sandbox's worker runs: the prompt's code with the model's body."""
    return f"{prompt}{body.rstrip()}\n"


def context(prompt: str) -> str:
    """What the (trusted) test runner runs before the tests: the prompt with a stub body, for the
    helpers some tests call (HumanEval/32's `poly`, /38's `encode_cyclic`)."""
    return f"{prompt}\n    pass\n" if ends_with_open_function(prompt) else ""


@register
class Code(TaskFamily):
    """Write a function body that passes hidden asserts."""

    name = "code"
    order = 4
    group = "reasoning"
    paper_sensitivity = -0.22  # the paper's task sensitivity (protocol.md)
    hub_defaults = {
        # MBPP rows become HumanEval-like problems (signature + docstring -> body)
        "train": {"path": "google-research-datasets/mbpp", "name": "full", "split": "train", "format": "mbpp"},
        "test": {"path": "openai/openai_humaneval", "split": "test", "format": "humaneval"},
    }
    hub_formats = ("mbpp", "humaneval")
    kind = "generate"
    score_name = "pass@1"
    runs_programs = True
    max_new_tokens = 48  # longest gold body (the counting loop) is ~25 tokens
    completion_chars = (8, 400)

    def __init__(self, timeout_s: float = 3.0, memory_mb: int = 256, workers: int = 2, jail: str = "auto") -> None:
        # the stages set the sandbox limits and jail from params.yaml (`configure`)
        self.timeout_s, self.memory_mb, self.workers, self.jail = timeout_s, memory_mb, workers, jail

    def configure(self, params: Params) -> None:
        """The sandbox's limits and jail: params.yaml `evaluate.code_*`, wherever code is judged
        (evaluate, validate's verification, generate's rejection sampling)."""
        cfg = params.evaluate
        self.timeout_s, self.memory_mb, self.jail = cfg.code_timeout_s, cfg.code_memory_mb, cfg.code_jail

    def build(self, split: Literal["train", "test"], n: int, seed: int) -> list[Example]:
        """`n` problems cycling over the split's side of the space in shuffled order."""
        rng = random.Random(f"{self.name}:{split}:{seed}")
        pool = [c for c in _space() if partition(_problem(c)[1]) == split]
        rows: list[Example] = []
        order: list[tuple[int, int, int, int]] = []
        for i in range(n):
            if not order:  # every combination once before any repeats
                order = rng.sample(pool, len(pool))
            combo = order.pop()
            entry, prompt, body = _problem(combo)
            fam, k = FAMILIES[combo[0]], combo[3]
            tests = "\n".join(f"assert {entry}({arg!r}) == {fam.ref(arg, k)!r}" for arg in _inputs(fam, k, rng))
            rows.append({
                "id": f"{self.name}-{split}-{i:06d}",
                "prompt": prompt,
                "completion": body,
                "entry_point": entry,
                "tests": tests,
            })
        return rows

    def corpus(self, rng: random.Random) -> list[str]:
        """`CORPUS_FUNCTIONS` functions (signature, docstring, body) drawn from the corpus's side of the
        space, three to a file like a module: code no fine-tuning or test problem is, as public code
        is not HumanEval. (All ~1,000 of them each pass would make code half of the corpus.)"""
        functions = rng.sample(_corpus_functions(), CORPUS_FUNCTIONS)
        return ["\n\n".join(functions[i:i + 3]) for i in range(0, len(functions), 3)]

    def extract(self, text: str) -> str | None:
        """The function body: the completion up to the first non-blank line that is not indented
        (where the function ends); None when no indented code comes first."""
        lines = []
        for line in text.split("\n"):
            if line.strip() and not line[0].isspace():
                break
            lines.append(line)
        body = "\n".join(lines)
        return body if body.strip() else None

    def score(self, examples: list[Example], completions: list[str]) -> list[Scored]:
        """Judge every example's body against its tests in the sandbox (`workers` at a time).

        Built-in tests compare type and value (`strict`); hub tests (HumanEval's `check`, MBPP's
        asserts) keep Python's ``==``, on values that can only be plain built-in types. Each row's
        extra says how it ended (`status`) and which isolation ran it (`isolation`). A program judged
        before, under the same tests, limits, jail and judge, takes its verdict from the memo
        (synthmix.verdict_memo; SYNTHMIX_JUDGE_MEMO=off judges every one)."""
        from synthmix import verdict_memo
        from synthmix.sandbox import check_function, decided, resolve_jail  # lazily: only scoring needs it

        bodies = [self.extract(text) for text in completions]
        isolation = resolve_jail(self.jail)  # once, before the threads: `require` fails here, warns once
        statuses: list[str | None] = [None] * len(examples)
        calls: dict[int, dict[str, Any]] = {}
        for i, (ex, body) in enumerate(zip(examples, bodies)):
            entry = ex.get("entry_point") or _entry_point(ex["prompt"])
            if body is None:
                statuses[i] = "no_body"
            elif not ex.get("tests"):
                statuses[i] = "no_tests"
            elif entry is None:
                statuses[i] = "no_entry_point"
            else:
                calls[i] = {"solution": solution(ex["prompt"], body), "entry_point": entry, "tests": ex["tests"],
                            "context": context(ex["prompt"]), "strict": self.source == "builtin"}
        limits = {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb}
        memo = verdict_memo.VerdictMemo.from_env() if calls else None
        keys: dict[int, str] = {}
        if memo is not None:  # judged before (same program, tests, limits, jail and judge): not again
            fingerprint = verdict_memo.judge_fingerprint(isolation)
            keys = {i: verdict_memo.verdict_key(fingerprint, **call, **limits) for i, call in calls.items()}
            known = memo.get_many(keys.values())
            for i, key in keys.items():
                statuses[i] = known.get(key)
        todo = [i for i in calls if statuses[i] is None]

        def run(i: int) -> Any:
            return check_function(**calls[i], **limits, jail=self.jail)

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            results = list(pool.map(run, todo))
        for i, result in zip(todo, results):
            statuses[i] = result.status
        if memo is not None:  # (None as well when there was nothing to judge)
            memo.put_many({keys[i]: r.status for i, r in zip(todo, results) if decided(r)})
            print(f"{self.name}: {len(calls) - len(todo)} of {len(calls)} programs' verdicts from the judge "
                  f"memo ({memo.path}; {verdict_memo.MEMO_ENV}=off to judge all)", file=sys.stderr)
        return [Scored(float(status == "passed"), body, {"status": status, "isolation": isolation})
                for body, status in zip(bodies, statuses)]

    def verify_instances(self, examples: list[Example]) -> list[bool]:
        """Built-in data: well-formed, and the body passes, in the sandbox, the asserts the family
        writes for the example's docstring. The docstring must be one of the families' ("Return x
        plus 3."), its parameter the signature's, and its K in range; the asserts come from that
        family's reference function on inputs drawn from the prompt. An unknown docstring cannot be
        checked, so it is not verified. Hub data: the checks alone (no reference to test against)."""
        if self.source != "builtin":
            return super().verify_instances(examples)
        jobs = []
        for ex in examples:
            tests = _own_tests(ex.get("prompt") or "") if all(self.checks(ex).values()) else None
            jobs.append({**ex, "tests": tests} if tests else None)
        runnable = [j for j in jobs if j is not None]
        passed = iter(s.correct == 1.0 for s in self.score(runnable, [j["completion"] for j in runnable]))
        return [next(passed) if j is not None else False for j in jobs]

    def summarize(self, examples: list[Example], scored: list[Scored]) -> dict[str, float]:
        """pass@1 with one greedy sample per problem: the mean of per-problem pass/fail."""
        return {"pass@1": sum(s.correct for s in scored) / len(scored) if scored else 0.0}

    def trivial_baseline(self, train: list[Example], test: list[Example]) -> dict[str, Any]:
        """An empty body passes nothing: every problem asserts a non-None result."""
        return {"name": "empty body", "score": 0.0}

    def instance_prompt(self, rng: random.Random) -> str:
        """Whole examples start with a function definition."""
        return "def "

    def parse_instance(self, text: str) -> Example | None:
        """Read the signature + docstring (the prompt) and the body; tests are unknown (None)."""
        m = _SIGNATURE.match(text)
        if m is None:
            return None
        body = self.extract(text[m.end():])
        if body is None:
            return None
        return {"prompt": m.group(0), "completion": body, "entry_point": m.group(1), "tests": None}

    def checks(self, example: Example) -> dict[str, bool]:
        """Prompt is a signature + docstring; the completion has a body; together they parse.

        The prompt's format: built-in data, exactly the family's one-argument signature and one-line
        docstring; hub data (HumanEval, MBPP), any code that ends with a function's header and at
        most its docstring and imports (see `ends_with_open_function`)."""
        prompt, completion = example.get("prompt") or "", example.get("completion") or ""
        try:
            ast.parse(prompt + completion)
            parses = True
        except (SyntaxError, ValueError):
            parses = False
        fmt = bool(_SIGNATURE.fullmatch(prompt)) if self.source == "builtin" else ends_with_open_function(prompt)
        return {
            "prompt_format": fmt,
            "has_body": self.extract(completion) is not None,
            "code_parses": parses,
        }
