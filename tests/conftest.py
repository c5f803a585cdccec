"""Shared fixtures: tiny synthetic data with a planted answer, and small fitted models."""
from __future__ import annotations

from pathlib import Path

import pytest

from coldstart import ColdStartRecommender, Config, make_synthetic

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY = Config(embedding_dim=8, hidden=(16, 8), epochs=2, meta_batch_size=16, n_negatives=64, seed=0)


def shared_data(name: str) -> Path:
    """A dataset folder under ../shared/data, or a skip saying why it is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: real-data tests need ../shared/data beside the repo")
    return path


@pytest.fixture(scope="session")
def tiny_data():
    return make_synthetic(n_users=60, n_items=50, ratings_per_user=(6, 15), seed=1)


@pytest.fixture(scope="session", params=["implicit", "rating"])
def fitted(request, tiny_data):
    return ColdStartRecommender(TINY.replace(objective=request.param)).fit(tiny_data)
