from __future__ import annotations

import warnings

import pytest
import torch

from eacps import Condition

torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture
def condition() -> Condition:
    return Condition(id="c0", prompt="a photo of a cat")
