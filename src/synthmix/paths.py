"""The project's file layout: the one place stages and dvc.yaml agree on where things live."""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
MODELS = Path("models")
METRICS = Path("metrics")


def external(task: str, split: str) -> Path:
    """External (human-made) examples of `task`: data/external/<task>/<split>.jsonl."""
    return DATA / "external" / task / f"{split}.jsonl"


def tokenizer() -> Path:
    return MODELS / "tokenizer"


def base(size: str) -> Path:
    """A ladder size's pretrained base model and its tokenizer (stage `pretrain`)."""
    return MODELS / "base" / size


def pretrain_log(size: str) -> Path:
    """dvclive directory of a base model's pretraining run."""
    return METRICS / "pretrain" / size


def pretrain_summary(size: str) -> Path:
    return METRICS / "pretrain" / f"{size}.json"


def mixed(iteration: int, task: str) -> Path:
    """The training set of `iteration` (iteration 0: external only)."""
    return DATA / "mixed" / f"iter{iteration}" / f"{task}.jsonl"


def synthetic_raw(iteration: int, task: str) -> Path:
    """Everything the model generated for `iteration`, before validation (always kept)."""
    return DATA / "synthetic" / "raw" / f"iter{iteration}" / f"{task}.jsonl"


def synthetic_valid(iteration: int, task: str) -> Path:
    """Generated samples after the validation policy (keep / drop)."""
    return DATA / "synthetic" / "validated" / f"iter{iteration}" / f"{task}.jsonl"


def synthetic_card(iteration: int, task: str) -> Path:
    """The data card (Markdown) of a validated synthetic set."""
    return DATA / "synthetic" / "validated" / f"iter{iteration}" / f"{task}.card.md"


def synthetic_meta(iteration: int) -> Path:
    """Which model generated iteration `iteration`'s synthetic data, and with which sampling params."""
    return DATA / "synthetic" / "raw" / f"iter{iteration}" / "meta.json"


def validation_details(iteration: int) -> Path:
    """The full great-expectations report (per-expectation statistics, failing examples)."""
    return DATA / "synthetic" / "validated" / f"iter{iteration}" / "report.json"


def model(iteration: int, task: str) -> Path:
    return MODELS / f"iter{iteration}" / task


def predictions(iteration: int, task: str) -> Path:
    """Every test example's prediction, gold answer, correctness and confidence."""
    return DATA / "predictions" / f"iter{iteration}" / f"{task}.jsonl"


def scores(iteration: int) -> Path:
    """Per-task metrics of `iteration` (what `dvc metrics diff` compares)."""
    return METRICS / "iterations" / f"iter{iteration}.json"


def reliability(iteration: int, n_bins: int) -> Path:
    """Reliability-diagram rows of every task at `iteration`, with `n_bins` bins."""
    return METRICS / "reliability" / f"iter{iteration}" / f"bins{n_bins}.json"


def train_log(iteration: int, task: str) -> Path:
    """dvclive directory of one training run."""
    return METRICS / "train" / f"iter{iteration}" / task


def mix_counts(iteration: int) -> Path:
    return METRICS / "mix" / f"iter{iteration}.json"


def validation_report(iteration: int) -> Path:
    return METRICS / "validation" / f"iter{iteration}.json"


def gate(iteration: int) -> Path:
    return METRICS / "gate" / f"iter{iteration}.json"


def ensure_parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
