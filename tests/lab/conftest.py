"""Fixtures of the lab tests: one engine client for the whole run, and `labctl` run from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest
from labrunner import Labctl


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"no Docker engine answers (CI starts one: .ci/run): {exc}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def lc(tmp_path_factory: pytest.TempPathFactory) -> Labctl:
    """`labctl` run as a user runs it, from a directory that is not the repository."""
    return Labctl(tmp_path_factory.mktemp("elsewhere"))
