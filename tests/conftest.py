"""Shared fixtures: the repository root, MNIST (when present) and the shipped model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hdr import mnist

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The MNIST root (``../shared/data``); tests that need it are skipped when it is absent."""
    if not mnist.is_present(DATA_ROOT):
        pytest.skip(f"MNIST not found under {DATA_ROOT} (expected MNIST/raw/*-ubyte)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def mnist_test(data_root) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test images (uint8 N×28×28) and labels."""
    images, labels = mnist.load(data_root, train=False)
    return images.numpy(), labels.numpy()


@pytest.fixture(scope="session")
def recognizer():
    """The shipped model."""
    from hdr import Recognizer

    return Recognizer.from_pretrained()
