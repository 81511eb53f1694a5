"""Typed access to a dataset row's columns, with errors that say which column is wrong and how."""

from __future__ import annotations

from typing import Any


class HubError(RuntimeError):
    """A dataset cannot be loaded, or one of its rows does not fit the dataset's schema."""


class RowError(ValueError):
    """An adapter's verdict: this row does not fit the dataset's schema (a broken or wrong copy)."""


class SkipRow(ValueError):
    """An adapter's verdict: the row is well-formed but cannot be put in the family's format."""


def text(row: dict[str, Any], column: str, *, empty_ok: bool = False) -> str:
    """`row[column]`, which must be a string (non-blank unless `empty_ok`)."""
    value = row[column]
    if not isinstance(value, str):
        raise RowError(f"column {column!r} must be a string, got {type(value).__name__} {value!r:.80}")
    if not empty_ok and not value.strip():
        raise RowError(f"column {column!r} is empty")
    return value


def texts(value: Any, what: str, *, empty_ok: bool = False) -> list[str]:
    """`value` as a list of strings (`what` names it in the error)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise RowError(f"{what} must be a list of strings, got {type(value).__name__} {value!r:.80}")
    if not empty_ok and not value:
        raise RowError(f"{what} is an empty list")
    return list(value)


def struct(row: dict[str, Any], column: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """`row[column]`, which must be a mapping with (at least) `keys`."""
    value = row[column]
    if not isinstance(value, dict) or any(k not in value for k in keys):
        raise RowError(f"column {column!r} must be a struct with fields {list(keys)}, got {value!r:.120}")
    return value


def one_line(value: str) -> str:
    """Whitespace (newlines included) collapsed to single spaces: the families' prompts are line-based."""
    return " ".join(value.split())
