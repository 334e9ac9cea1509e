"""Shared fixtures: the repository root, MNIST (when present) and the shipped model."""
from __future__ import annotations

import os

# huggingface_hub reads this once, at import: without it each hub request first calls huggingface.co.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hdr import mnist  # noqa: E402

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
def mnist_train(data_root) -> tuple[np.ndarray, np.ndarray]:
    """MNIST training images (uint8 N×28×28) and labels."""
    images, labels = mnist.load(data_root, train=True)
    return images.numpy(), labels.numpy()


@pytest.fixture(scope="session")
def mnist_validation(data_root) -> tuple[np.ndarray, np.ndarray]:
    """The training digits every model holds out for validation (uint8 N×28×28) and labels: the dev sets' digits."""
    images, labels = mnist.load_validation(data_root)
    return images.numpy(), labels.numpy()


@pytest.fixture(scope="session")
def recognizer():
    """The shipped model."""
    from hdr import Recognizer

    return Recognizer.from_pretrained()
