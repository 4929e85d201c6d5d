"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest

from tests.mixlake.helpers import Cli


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """`mixlake` called in this process, its output captured."""
    return Cli(capsys)
