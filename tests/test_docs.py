"""Every ```python block in docs/ runs, file by file, in a fresh process on the embedded PG."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tenantry.db.embedded import EmbeddedPostgres
from tests.conftest import ROOT, TEST_DATA_DIR, database_name, recreate_database

DOCS = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


def test_there_are_examples() -> None:
    assert sum(len(blocks(p)) for p in DOCS) >= 3


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p)], ids=lambda p: p.name)
async def test_examples_run(path: Path, embedded_server: EmbeddedPostgres) -> None:
    name = database_name(f"docs_{path.stem}")
    await recreate_database(embedded_server.url("postgres"), name)
    env = {
        **os.environ,
        "TENANTRY_DATA_DIR": str(TEST_DATA_DIR),
        "TENANTRY_EMBEDDED_DATABASE": name,
        "TENANTRY_DATABASE_URL": "",
    }
    for number, code in enumerate(blocks(path), 1):
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{path.name} block {number}:\n{result.stderr}"
