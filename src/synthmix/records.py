"""Reading and writing example sets as JSON Lines (atomic writes: an interrupted stage leaves no half file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable



def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows as JSON Lines atomically: a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    # Plain json, not Dataset.from_list: that infers the schema from the first row and silently
    # drops keys the first row lacks, which synthetic rows (provenance fields) often do.
    with tmp.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON Lines file, with a clear error when a stage's input is missing."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the stage that writes it first (dvc repro)")
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def write_text(path: Path, text: str) -> Path:
    """Write `text` atomically (a temporary file beside `path`, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
