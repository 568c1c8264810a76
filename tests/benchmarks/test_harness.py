"""The benchmark harness's choice of cases under ``--only``: a case's peer comes with it, and the
peer's peer, so that every ratio it prints has both sides measured."""

from __future__ import annotations

from benchmarks.harness import Case, Plan, select_cases


async def _noop() -> None:
    return None


def test_only_brings_the_peers_of_the_peers() -> None:
    cases = [
        Case("routed", _noop, peer="fired"),
        Case("fired", _noop, peer="bare"),
        Case("bare", _noop),
        Case("other", _noop),
    ]
    chosen = select_cases(cases, Plan.create(quick=True, only="routed"))
    assert [c.name for c in chosen] == ["routed", "fired", "bare"]
    assert [c.name for c in select_cases(cases, Plan.create(quick=True))] == [
        "routed",
        "fired",
        "bare",
        "other",
    ]
