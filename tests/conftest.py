"""Shared fixtures; tests read only the repository's own examples, never ../shared."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on the same examples every time (a red run must be reproducible and
# is never a new example found by chance); elsewhere they explore new ones at each run. Set
# HYPOTHESIS_PROFILE=explore to explore under CI too.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore"))

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
