"""A sweep's results as files that git can keep: one gzipped JSON record per finished experiment.

`synthmix report` reads experiments through DVC (`dvc exp show`, and each run's per-item test
scores from the DVC cache at the run's revision). Those live in `.git/refs/exps` and the DVC cache
of the machine that ran them, or of a remote they were pushed to. A record keeps what the report
reads of a run (its axes, setting, every per-iteration metric, the gate's flags, the validation
rates and the per-item test scores the paired bootstrap resamples), so that

- a long sweep can run in pieces on machines that share no cache or remote: each piece archives
  its runs (`synthmix report --archive DIR`), the records are committed, and the last piece
  reports on all of them (`synthmix report --from-archive DIR`);
- a committed report (docs/report) can be rendered again, by anyone, after its experiments are
  gone from every cache, with the same numbers: the records hold everything the analysis reads.

A record is `<experiment>.json.gz`, written with a zero gzip timestamp and sorted keys, so the same
run writes the same bytes and git sees no change when a sweep is archived twice.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path
from typing import Any

from synthmix.report.collect import Run

FORMAT = 1
SUFFIX = ".json.gz"
#: Run fields whose keys are iterations (JSON turns them into strings)
_BY_ITERATION = ("metrics", "gate", "malformed", "synthetic_accuracy", "items")
_FIELDS = {f.name for f in dataclasses.fields(Run)}
_REQUIRED = {f.name for f in dataclasses.fields(Run)
             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


class ArchiveError(ValueError):
    """A record that cannot be read as a run, named with the file and the reason."""


def file_name(run: Run) -> str:
    """The record's file name: the experiment's name, made safe for any file system."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run.name) + SUFFIX


def dumps(run: Run) -> bytes:
    """One run's record: the same bytes for the same run."""
    record = {"format": FORMAT, "run": dataclasses.asdict(run)}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode(), mtime=0)


def loads(data: bytes, source: str = "<record>") -> Run:
    """A run from its record; ArchiveError names `source` and what is wrong with it."""
    try:
        record = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as err:
        raise ArchiveError(f"{source}: not a gzipped JSON record ({err})") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ArchiveError(f"{source}: record format {found!r}, this synthmix reads format {FORMAT}")
    fields: dict[str, Any] = dict(record.get("run") or {})
    missing, unknown = sorted(_REQUIRED - fields.keys()), sorted(fields.keys() - _FIELDS)
    if missing or unknown:
        raise ArchiveError(f"{source}: missing fields {missing}, unknown fields {unknown}")
    try:
        for key in _BY_ITERATION:
            if key in fields:
                fields[key] = {int(it): value for it, value in fields[key].items()}
        run = Run(**fields)
    except (AttributeError, TypeError, ValueError) as err:
        raise ArchiveError(f"{source}: {err}") from err
    if 0 not in run.metrics:
        raise ArchiveError(f"{source}: no iteration-0 metrics")
    return run


def write(runs: list[Run], directory: Path) -> list[Path]:
    """Write each run's record into `directory` (created); a record of the same name is replaced.
    Returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    written = []
    for run in runs:
        name = file_name(run)
        if name in names:
            raise ArchiveError(f"experiments {names[name]!r} and {run.name!r} would both be archived as {name}: "
                               "rename one (dvc exp rename)")
        names[name] = run.name
        path = directory / name
        data = dumps(run)
        if not path.exists() or path.read_bytes() != data:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # a kill mid-write leaves the old record, not half a new one
        written.append(path)
    return written


def read(directory: Path) -> list[Run]:
    """Every record in `directory`, in file-name order; ArchiveError names a bad file."""
    if not directory.is_dir():
        raise ArchiveError(f"{directory}: no such archive directory")
    return [loads(path.read_bytes(), str(path)) for path in sorted(directory.glob("*" + SUFFIX))]
