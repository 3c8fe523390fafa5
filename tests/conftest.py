"""Shared pytest fixtures for audio-xai-kit.

- Progress bars are silenced for the whole test session.
- `shared_dir` / `fsdd_dev`: the development data beside the checkout (../shared). Users do not
  have it, so tests that need it skip cleanly when it is absent, unless AXK_REQUIRE_SHARED=1
  (set by .ci/run), in which case a missing folder is a failure, never a silent skip.
"""
import os
from pathlib import Path

import pytest

os.environ.setdefault("AUDIO_XAI_KIT_PROGRESS", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AXK_SHARED", REPO.parent / "shared"))


def require_or_skip(ok: bool, what: str, env: str):
    "Skip with `what` as the reason, or fail when the environment variable `env` is 1 (CI)."
    if ok:
        return
    if os.environ.get(env) == "1":
        pytest.fail(f"{what} ({env}=1 forbids skipping this test)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    require_or_skip(SHARED.is_dir(), f"no shared development data at {SHARED}", "AXK_REQUIRE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def fsdd_dev(shared_dir) -> Path:
    p = shared_dir / "data" / "fsdd-dev"
    require_or_skip(p.is_dir(), f"no FSDD development recordings at {p}", "AXK_REQUIRE_SHARED")
    return p


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    "A private data root for one test (AUDIO_XAI_KIT_DATA points at it)."
    monkeypatch.setenv("AUDIO_XAI_KIT_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def pytest_collection_modifyitems(config, items):
    "Tests marked `slow` (paper-scale) run only with AXK_SLOW=1; they are skipped, with that reason, otherwise."
    if os.environ.get("AXK_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="paper-scale check: set AXK_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
