"""Shared test set-up: OpenMP waiting politely under pytest-xdist; the sandbox tests' two isolation paths."""

from __future__ import annotations

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two test files run side by side (pyproject addopts): OpenMP threads that spin while they wait
    # would starve the other file's processes (README, Running experiments). Inherited by every
    # stage the tests start.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# The code judge's verdict memo (synthmix.verdict_memo) off: every sandbox test judges for real, and
# no test reads or writes this user's memo. tests/test_verdict_memo.py turns it on where it is the subject.
os.environ["SYNTHMIX_JUDGE_MEMO"] = "off"


#: the longest test files (minutes of real dvc, queue and Slurm runs), started first, one per worker
HEAVIEST = ("test_report_browser.py", "test_slurm_sweep.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first: the two heaviest files, then the other end-to-end (slow) ones, then the rest,
    so that no worker is left running a long file alone at the end (pytest-xdist hands out whole
    files in this order). A stable sort: each file's tests keep their order."""
    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        if name in HEAVIEST:
            return (0, HEAVIEST.index(name))
        return (1, 0) if item.get_closest_marker("slow") else (2, 0)

    items.sort(key=rank)


@pytest.fixture(params=["bubblewrap", "guard"])
def jail(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The `jail` argument that selects one path: "require" (bubblewrap) or "off" (the guard).

    Where bwrap can't run, the bubblewrap case skips, unless SYNTHMIX_JAIL_TESTS=required
    (`.ci/run` sets it after installing bubblewrap): then it fails, so CI can't lose the jail quietly."""
    from synthmix.sandbox import JAIL_ENV, _bwrap_probe

    monkeypatch.delenv(JAIL_ENV, raising=False)
    if request.param == "guard":
        return "off"
    flags, why = _bwrap_probe()
    if flags is None:
        if os.environ.get("SYNTHMIX_JAIL_TESTS") == "required":
            pytest.fail(f"bubblewrap is required for these tests (SYNTHMIX_JAIL_TESTS=required) but {why}")
        pytest.skip(f"no jail here: {why}")
    return "require"
