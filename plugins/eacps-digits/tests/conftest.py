from __future__ import annotations

import pytest
from eacps_digits.generator import DigitsGenerator
from eacps_digits.scorers import DigitsConsistency, DigitsIdentity, DigitsRealism


@pytest.fixture(scope="session")
def gen() -> DigitsGenerator:
    return DigitsGenerator()


@pytest.fixture(scope="session")
def scorers() -> dict:
    return {"consistency": DigitsConsistency(), "realism": DigitsRealism(), "identity": DigitsIdentity()}
