"""Losses shared by the methods: symmetric KL (SMART's l_s for classification), squared error (regression)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_kl(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_t || p) + KL(p || p_t), each direction with its target side detached (mt-dnn's SymKlCriterion);
    per-example mean (batchmean), in fp32."""
    a, b = logits.float(), target_logits.float()
    forward = F.kl_div(F.log_softmax(a, -1), F.log_softmax(b.detach(), -1), reduction="batchmean", log_target=True)
    backward = F.kl_div(F.log_softmax(b, -1), F.log_softmax(a.detach(), -1), reduction="batchmean", log_target=True)
    return forward + backward


def squared_error(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference to a detached target, in fp32 (SMART's l_s for regression)."""
    return F.mse_loss(outputs.float(), target.detach().float())


def divergence(logits: torch.Tensor, target_logits: torch.Tensor, regression: bool) -> torch.Tensor:
    """SMART's l_s: squared error for regression (one output), symmetric KL otherwise."""
    return squared_error(logits, target_logits) if regression else symmetric_kl(logits, target_logits)


def is_regression(model: torch.nn.Module) -> bool:
    from advlm.embeddings import unwrap

    config = getattr(unwrap(model), "config", None)
    return getattr(config, "problem_type", None) == "regression" or getattr(config, "num_labels", 2) == 1
