"""The peer of the HTTP rows: a FastAPI app whose routes return constants."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"valid": True}
