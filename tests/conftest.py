"""Shared fixtures; tests read only the repository's own examples, never ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def examples() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def wire() -> list[dict]:
    with (EXAMPLES / "wire.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="session")
def wire_truth() -> dict[str, dict]:
    with (EXAMPLES / "wire.truth.jsonl").open(encoding="utf-8") as handle:
        return {t["id"]: t for t in map(json.loads, handle)}
