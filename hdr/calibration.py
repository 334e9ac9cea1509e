"""Confidence calibration: temperature scaling, the evidence of a prediction, and expected calibration error."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def calibrated_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Class probabilities of ``logits`` with the temperature applied."""
    return torch.softmax(logits.float() / temperature, dim=-1)


def evidence(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """How strongly each row of ``logits`` looks like any class at all: the log-sum-exp of the calibrated logits
    (the negative free energy). Unlike the top probability it stays low for an input that looks like no class,
    even when one class happens to win by a wide margin."""
    return torch.logsumexp(logits.float() / temperature, dim=-1)


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
    # Imported here: only training needs it, and the app (which uses the functions above) starts faster without.
    from torchmetrics.functional.classification import multiclass_calibration_error

    return float(multiclass_calibration_error(probabilities, labels, num_classes=probabilities.shape[-1], n_bins=bins))
