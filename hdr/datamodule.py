"""LightningDataModule for MNIST: a seeded validation split carved from the 60k training set."""
from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from hdr import mnist
from hdr.augment import Augmentation
from hdr.feedback import load_feedback


class MNISTDataModule(L.LightningDataModule):
    """MNIST as float tensors in [0, 1]; training batches are augmented after transfer.

    Args:
        data_root: folder holding ``MNIST/raw`` (torchvision layout).
        download: fetch MNIST into ``data_root`` when it is missing.
        val_size: images held out of the 60k training set for validation.
        train_subset: use only this many training images (for quick runs); 0 means all.
        batch_size: images per batch.
        split_seed: seed of the train/validation split (kept apart from the run seed).
        augmentation: random distortions applied to training batches; ``None`` disables them.
        feedback_dir: a folder of user corrections (see ``hdr.feedback``) appended to the training set.
        feedback_repeats: how many times each feedback image is repeated, so a few corrections matter.
    """

    def __init__(
        self,
        data_root: str = "../shared/data",
        download: bool = True,
        val_size: int = mnist.VALIDATION_SIZE,
        train_subset: int = 0,
        batch_size: int = 128,
        split_seed: int = mnist.SPLIT_SEED,
        augmentation: Augmentation | None = None,
        feedback_dir: str | None = None,
        feedback_repeats: int = 20,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["augmentation"])
        self.augmentation = augmentation

    def prepare_data(self) -> None:
        mnist.fetch_if_missing(self.hparams.data_root, self.hparams.download)

    def setup(self, stage: str) -> None:
        images, labels = mnist.load(self.hparams.data_root, train=True)
        train_index, val_index = mnist.split(len(labels), self.hparams.val_size, self.hparams.split_seed)
        if self.hparams.train_subset:
            train_index = train_index[: self.hparams.train_subset]
        train_images, train_labels = images[train_index], labels[train_index]
        if self.hparams.feedback_dir:
            feedback_images, feedback_labels = load_feedback(self.hparams.feedback_dir)
            repeats = self.hparams.feedback_repeats
            train_images = torch.cat([train_images, torch.from_numpy(feedback_images).repeat(repeats, 1, 1)])
            train_labels = torch.cat([train_labels, torch.from_numpy(feedback_labels).repeat(repeats)])
        self.train_set = TensorDataset(train_images, train_labels)
        self.val_set = TensorDataset(images[val_index], labels[val_index])
        self.test_set = TensorDataset(*mnist.load(self.hparams.data_root, train=False))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1000)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=1000)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """uint8 → float in [0, 1] with a channel axis; augment whole training batches at once."""
        images, labels = batch
        images = images.unsqueeze(1).float().div_(255)
        if self.trainer is not None and self.trainer.training and self.augmentation is not None:
            images = self.augmentation(images)
        return images.contiguous(memory_format=torch.channels_last), labels
