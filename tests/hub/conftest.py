"""Fixtures of the hub-source tests: local copies of the datasets and a throwaway datasets cache."""

from __future__ import annotations

import datasets.config
import huggingface_hub.constants
import pytest
import torch

from hub_copies import write_all
from synthmix.params import parse_params
from synthmix.tasks.hub import SplitData, load_task

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory):
    """datasets' cache in a temporary directory (the tests never read or fill the user's cache), and
    offline mode on as synthmix sets it (HF_DATASETS_OFFLINE=1, HF_HUB_OFFLINE=1), whichever of
    datasets, huggingface_hub and synthmix this pytest process happened to import first."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("hf_datasets_cache")
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", path)
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield path


@pytest.fixture(scope="session")
def copies(tmp_path_factory, hub_cache) -> dict:
    """prepare.hub overrides pointing every task at its local copy (hub_copies.py)."""
    return write_all(tmp_path_factory.mktemp("hub_copies"))


@pytest.fixture(scope="session")
def load(copies):
    """load(task, train=None, test=None, seed=0, **hub overrides) -> {"train": SplitData, "test": SplitData}."""

    def _load(task: str, train: int | None = None, test: int | None = None, seed: int = 0,
              hub: dict | None = None) -> dict[str, SplitData]:
        params = parse_params({"prepare": {"source": "hub", "hub": {task: _merge(copies[task], hub or {})}}})
        return load_task(task, params.prepare.hub[task], {"train": train, "test": test}, seed)

    return _load


def _merge(base: dict, over: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for split, spec in over.items():
        out[split] = {**out.get(split, {}), **spec}
    return out
