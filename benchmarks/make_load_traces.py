"""``python -m benchmarks.make_load_traces``: (re)write benchmarks/data/load_traces/*.csv from
:mod:`tenantry.ai.traces` (deterministic; tests/ai/test_traces.py checks the files match)."""

from __future__ import annotations

from pathlib import Path

from tenantry.ai.traces import write_traces

FOLDER = Path(__file__).parent / "data" / "load_traces"

if __name__ == "__main__":
    for path in write_traces(FOLDER):
        print(path)
