"""Shared test settings.

One torch thread: the tests use tiny tensors, where thread start-up costs more than it saves.
"""

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
