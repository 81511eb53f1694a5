"""Shared test set-up: OpenMP waiting politely under pytest-xdist; the sandbox tests' two isolation paths."""

from __future__ import annotations

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two test files run side by side (pyproject addopts): OpenMP threads that spin while they wait
    # would starve the other file's processes (README, Running experiments). Inherited by every
    # stage the tests start.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
