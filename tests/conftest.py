"""Shared fixtures: tiny real careamics configurations and images, and the SLURM test cluster."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.slurm_cluster"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "training: trains a real (tiny) careamics model on the CPU")
