"""Confidence calibration: temperature scaling and expected calibration error."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T minimising the negative log-likelihood of ``softmax(logits / T)``."""
    log_temperature = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=200)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_temperature.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp())


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Top-label expected calibration error (L1, equal-width bins)."""
    return float(multiclass_calibration_error(probabilities, labels, num_classes=probabilities.shape[-1], n_bins=bins))
