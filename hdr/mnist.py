"""MNIST in torchvision's on-disk layout (``ROOT/MNIST/raw/*-ubyte``), without torchvision.

The PyPI torchvision wheel is built against CUDA torch and does not import with the CPU
``torch==2.13.0`` this project pins, so this module is the single place that reads (and, for
users with internet, downloads) MNIST. Files are the same ones torchvision uses, checked by md5.
"""
from __future__ import annotations

import gzip
import hashlib
import urllib.request
from pathlib import Path

import numpy as np
import torch

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FILES = {
    # name: md5 of the uncompressed file, md5 of the .gz download
    "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", "ec29112dd5afa0611ce80d1b7f02629c"),
}


VALIDATION_SIZE = 5000  # training images held out for validation (every model uses the same split)...
SPLIT_SEED = 0  # ...chosen with this seed


def raw_dir(root: str | Path) -> Path:
    """Folder holding the four IDX files under a torchvision-style data root."""
    return Path(root).expanduser() / "MNIST" / "raw"


def is_present(root: str | Path) -> bool:
    """True when all four uncompressed IDX files are under ``root``."""
    return all((raw_dir(root) / name).is_file() for name in FILES)


def download(root: str | Path) -> None:
    """Download and check the four MNIST files into ``root/MNIST/raw`` (skips files already there)."""
    folder = raw_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name, (_, gz_md5) in FILES.items():
        target = folder / name
        if target.is_file():
            continue
        errors = []
        for mirror in MIRRORS:
            try:
                with urllib.request.urlopen(mirror + name + ".gz", timeout=60) as response:
                    packed = response.read()
            except OSError as error:
                errors.append(f"{mirror}: {error}")
                continue
            if hashlib.md5(packed).hexdigest() != gz_md5:
                errors.append(f"{mirror}: checksum mismatch")
                continue
            target.write_bytes(gzip.decompress(packed))
            break
        else:
            raise RuntimeError(f"could not download {name}: " + "; ".join(errors))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (unsigned bytes) into a numpy array of its stored shape."""
    data = path.read_bytes()
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(root: str | Path, train: bool, download_if_missing: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N×28×28 uint8) and labels (N int64) of the training or the test split."""
    if not is_present(root):
        if not download_if_missing:
            raise FileNotFoundError(
                f"MNIST not found under {raw_dir(root)}; set the data root or allow download"
            )
        download(root)
    prefix = "train" if train else "t10k"
    images = read_idx(raw_dir(root) / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(raw_dir(root) / f"{prefix}-labels-idx1-ubyte")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def split(count: int, val_size: int = VALIDATION_SIZE, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (training, validation) indices of the ``count`` training images: every model uses the same split."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]


def load_validation(root: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of the training images every model holds out for validation (the default :func:`split`):
    digits for dev sets, on which choices can be made without looking at the test split."""
    images, labels = load(root, train=True)
    _, validation = split(len(labels))
    return images[validation], labels[validation]


def fetch_if_missing(root: str | Path, allowed: bool) -> None:
    """Download MNIST into ``root`` when it is not there and downloading is ``allowed``."""
    if allowed and not is_present(root):
        download(root)
