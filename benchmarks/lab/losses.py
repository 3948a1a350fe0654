"""SMART's l_s on plain logits (one distribution per row), for the analysis scripts: symmetric KL for classes,
squared error for regression. The methods read model outputs through `advlm.heads`, which applies these per head."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advlm.heads import symmetric_kl_rows


def symmetric_kl(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_t || p) + KL(p || p_t), each direction with its target side detached (mt-dnn's SymKlCriterion);
    mean over rows (batchmean), in fp32."""
    return symmetric_kl_rows(logits, target_logits).mean()


def squared_error(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference to a detached target, in fp32 (SMART's l_s for regression)."""
    return F.mse_loss(outputs.float(), target.detach().float())


def divergence(logits: torch.Tensor, target_logits: torch.Tensor, regression: bool) -> torch.Tensor:
    """SMART's l_s: squared error for regression (one output), symmetric KL otherwise."""
    return squared_error(logits, target_logits) if regression else symmetric_kl(logits, target_logits)
