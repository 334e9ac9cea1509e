"""LightningModule: trains a DigitNet; metrics via torchmetrics."""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from hdr.hub import load_model
from hdr.model import DigitNet


class DigitClassifier(L.LightningModule):
    """Cross-entropy training of :class:`DigitNet` with AdamW and a one-cycle learning rate.

    Args:
        widths: channels of the convolution blocks.
        dropout: dropout before the final linear layer.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW weight decay.
        label_smoothing: cross-entropy label smoothing.
        members: networks in the model (more than one: an ensemble, each member trained with its own loss).
        init_from: start from the weights of this model (a model folder or hub repo id) instead of
            random ones, e.g. to fine-tune the shipped model on user feedback; ``widths`` and ``members`` must
            match, and an ensemble keeps its ``escalate_below`` (see :meth:`DigitNet.forward`).
    """

    def __init__(
        self,
        widths: list[int] = [32, 64, 128],
        dropout: float = 0.3,
        lr: float = 3e-3,
        weight_decay: float = 5e-4,
        label_smoothing: float = 0.0,
        members: int = 1,
        init_from: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = DigitNet(widths=widths, dropout=dropout, members=members).to(memory_format=torch.channels_last)
        if init_from:
            self._load_initial_weights(init_from)
        self.train_accuracy = MulticlassAccuracy(num_classes=10, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_classes=10, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes=10, average="micro")

    def _load_initial_weights(self, source: str) -> None:
        pretrained, _ = load_model(source)
        try:
            self.net.load_state_dict(pretrained.state_dict())
        except RuntimeError as error:
            raise ValueError(f"init_from {source!r} does not match model.widths={self.hparams.widths} "
                             f"and model.members={self.hparams.members}") from error
        self.net.escalate_below = pretrained.escalate_below

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def training_step(self, batch, batch_idx):
        """Each member learns from every image on its own, as the members of the shipped ensemble were trained:
        an ensemble answers with its first member alone where that one is sure, so each must be good alone."""
        images, labels = batch
        member_logits = self.net.member_logits(images)
        loss = torch.stack([F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)
                            for logits in member_logits]).mean()
        self.train_accuracy(member_logits.mean(0), labels)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_accuracy, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        images, labels = batch
        logits = self(images)
        self.val_accuracy(logits, labels)
        self.log("val/loss", F.cross_entropy(logits.float(), labels), prog_bar=True)
        self.log("val/acc", self.val_accuracy, prog_bar=True)

    def test_step(self, batch, batch_idx):
        images, labels = batch
        self.test_accuracy(self(images), labels)
        self.log("test/acc", self.test_accuracy)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.hparams.lr, total_steps=self.trainer.estimated_stepping_batches
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
