"""LightningModule: trains a :class:`LineNet` with CTC loss; exact-match and character error rate via torchmetrics."""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.text import CharErrorRate

from hdr.hub import load_folder
from hdr.line_model import ALPHABET, FRAME_WIDTH, LineNet, decode


def texts_of(labels: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Concatenated CTC label indices → one string per line."""
    return ["".join(ALPHABET[i - 1] for i in chunk.tolist()) for chunk in torch.split(labels, lengths.tolist())]


class LineReader(L.LightningModule):
    """CTC training of :class:`LineNet` with AdamW and a one-cycle learning rate.

    Args:
        widths: channels of the three convolution stages.
        context: channels of the 1-D layers along the line.
        dropout: dropout before the output layer.
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW weight decay.
        init_from: start from the weights of this line-reader folder (to train an exported model further);
            ``widths`` and ``context`` must match.
    """

    def __init__(self, widths: list[int] = [32, 64, 128], context: int = 128, dropout: float = 0.2,
                 lr: float = 3e-3, weight_decay: float = 1e-4, init_from: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = LineNet(widths=widths, context=context, dropout=dropout)
        if init_from:
            self.net.load_state_dict(load_folder(init_from, LineNet).state_dict())
        self.net = self.net.to(memory_format=torch.channels_last)
        self.val_exact = MeanMetric()
        self.val_cer = CharErrorRate()

    def forward(self, strips: torch.Tensor) -> torch.Tensor:
        return self.net(strips)

    def ctc_loss(self, batch: dict, logits: torch.Tensor) -> torch.Tensor:
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # T × B × C
        return F.ctc_loss(log_probs, batch["labels"], batch["widths"] // FRAME_WIDTH, batch["label_lengths"],
                          blank=0, zero_infinity=True)

    def training_step(self, batch, batch_idx):
        loss = self.ctc_loss(batch, self(batch["strips"]))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["widths"]))
        return loss

    def validation_step(self, batch, batch_idx):
        logits = self(batch["strips"])
        size = len(batch["widths"])
        self.log("val/loss", self.ctc_loss(batch, logits), prog_bar=True, batch_size=size)
        probabilities = logits.float().softmax(-1).cpu()
        predicted = ["".join(c.char for c in decode(p[: width // FRAME_WIDTH]))
                     for p, width in zip(probabilities, batch["widths"].tolist())]
        truth = texts_of(batch["labels"], batch["label_lengths"])
        self.val_exact.update(torch.tensor([float(p == t) for p, t in zip(predicted, truth)]))
        self.val_cer.update(predicted, truth)
        self.log("val/exact", self.val_exact, prog_bar=True, batch_size=size)
        self.log("val/cer", self.val_cer, batch_size=size)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.hparams.lr, total_steps=self.trainer.estimated_stepping_batches
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
