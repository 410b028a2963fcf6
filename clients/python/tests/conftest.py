"""The servers the tests run against, started by DraftStore's test suite (crates/server/tests/api/clients.rs):
DRAFTSTORE_URL with API keys for two tenants, DRAFTSTORE_LIMITED_URL the same with a rate limit of one request a
second. The tests refuse to run without them rather than skip."""

import os

import pytest


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: these tests run from DraftStore's test suite (scripts/test)")
    return value


@pytest.fixture(scope="session")
def url() -> str:
    return _env("DRAFTSTORE_URL")


@pytest.fixture(scope="session")
def limited_url() -> str:
    return _env("DRAFTSTORE_LIMITED_URL")


@pytest.fixture(scope="session")
def keys():
    alice, mallory = _env("DRAFTSTORE_KEYS").split(",")
    return {"alice": alice, "mallory": mallory}
