"""evaluate.load of the local metric folders: no hub, no network, cached per process."""

from __future__ import annotations

import socket
import sys
import time

import evaluate
import pytest

import synthmix.metrics as metrics

_net_events: list[tuple[str, object]] = []
_watching = False


def _audit(event: str, args: tuple) -> None:
    if _watching and event in ("socket.connect", "socket.getaddrinfo", "socket.__new__"):
        _net_events.append((event, args))


sys.addaudithook(_audit)  # hooks cannot be removed; it only records while _watching


def test_fresh_loads_and_computes_touch_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    global _watching
    monkeypatch.setattr(metrics, "_cache", {})
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", False)  # even when online
    _net_events.clear()
    _watching = True
    try:
        for name in metrics.METRIC_NAMES:
            assert isinstance(metrics.load(name), evaluate.EvaluationModule)
        metrics.load("distinct_n").compute(predictions=["a b", "b c"])
        assert _net_events == []
        socket.socket().close()  # control: the watcher does see socket activity
    finally:
        _watching = False
    assert [event for event, _ in _net_events] == ["socket.__new__"]


def test_loaded_once_per_process_and_fast() -> None:
    first = metrics.load("self_bleu")
    start = time.perf_counter()
    for _ in range(200):
        assert metrics.load("self_bleu") is first
    assert time.perf_counter() - start < 0.1


def test_unknown_name_never_reaches_the_hub() -> None:
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        metrics.load("bleu")


@pytest.mark.parametrize(
    ("name", "words"),
    [("ece", "(i/n, (i+1)/n]"), ("self_bleu", "method1"), ("distinct_n", "lowercase=False"), ("pass_at_k", "n - c < k")],
)
def test_modules_describe_their_definition(name: str, words: str) -> None:
    module = metrics.load(name)
    assert words in module.description and module.citation.startswith("@")
    assert module.name == name
