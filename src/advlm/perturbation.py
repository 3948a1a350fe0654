"""The shared geometry of embedding-space perturbations: init, normalized ascent, projection.

`delta` has the shape of the word embeddings (... x T x H: B x T for most heads, B x C x T for multiple
choice) and is kept in fp32 whatever the autocast dtype; `mask` has the shape of the token ids (... x T) with
1.0 at real tokens. Every function leaves `delta` exactly zero where `mask` is 0, and norms are taken over the
real tokens of one sequence (the last two dimensions, T x H), so a multiple-choice example has one norm per
choice (docs/methods.md). Norms:

- "l2":   per-sequence Frobenius norm over all real tokens (FreeLB, PGD, FreeAT, FGM, TextAT).
- "linf": per-sequence max-abs for the ascent direction, per-element clamp for the ball (FreeLB's linf).
- "token-linf": per-token max-abs (SMART's mt-dnn / smart-pytorch geometry).

Normalized ascent divides the gradient by its norm, so a gradient scaled by AMP's GradScaler gives the same
step unscaled; a non-finite gradient gives a zero step for that example instead of a NaN perturbation.
"""

from __future__ import annotations

import torch

NORMS = ("l2", "linf", "token-linf")
TINY = 1e-8


def _expand(mask: torch.Tensor) -> torch.Tensor:
    return mask.unsqueeze(-1).float()


def per_sequence(values: torch.Tensor) -> torch.Tensor:
    """Per-sequence values (shape ...) made to broadcast against a perturbation (... x T x H)."""
    return values[..., None, None]


def example_norm(x: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """Per-sequence norm over the last two dimensions (T x H), fp32: Frobenius for l2, max-abs otherwise.
    Shape: the leading dimensions (B, or B x C for multiple choice)."""
    x = x.float().flatten(-2)
    return x.norm(dim=-1) if norm == "l2" else x.abs().amax(dim=-1)


def init_delta(
    embeds: torch.Tensor, mask: torch.Tensor, init_mag: float, norm: str = "l2", eps: float = 0.0
) -> torch.Tensor:
    """FreeLB's init: l2 `U(-1,1) * init_mag / sqrt(n*H)` (n real tokens); linf `U(-init_mag, init_mag)`;
    token-linf `N(0, init_mag^2)` (SMART's noise). Zero when `init_mag` is 0. Returns a fp32 tensor.

    Departure: the init is projected into the eps ball too (the references project only after a step; their
    l2 init has norm about init_mag / sqrt(3), which some published settings put outside the ball)."""
    m = _expand(mask)
    if init_mag <= 0:
        return torch.zeros(embeds.shape, device=embeds.device, dtype=torch.float32)
    if norm == "token-linf":
        return torch.randn(embeds.shape, device=embeds.device) * init_mag * m
    delta = torch.empty(embeds.shape, device=embeds.device).uniform_(-1, 1) * m
    if norm == "l2":
        dims = mask.float().sum(-1) * embeds.size(-1)
        delta = delta * per_sequence(init_mag / dims.clamp_min(1).sqrt())
    else:
        delta = delta * init_mag
    return project(delta, mask, eps, norm)


def _finite(grad: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`grad` in fp32 on real tokens; zero for an example whose gradient is not finite."""
    g = grad.float() * _expand(mask)
    finite = per_sequence(torch.isfinite(g).flatten(-2).all(dim=-1))
    return torch.where(finite, g, torch.zeros_like(g))


def direction(grad: torch.Tensor, mask: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """The normalized ascent direction; zero for an example whose gradient is not finite."""
    g = _finite(grad, mask)
    if norm == "token-linf":
        return g / g.abs().amax(dim=-1, keepdim=True).clamp_min(TINY)
    return g / per_sequence(example_norm(g, norm).clamp_min(TINY))


def project(delta: torch.Tensor, mask: torch.Tensor, eps: float | torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """Into the eps ball (eps <= 0: unbounded): l2 rescales an example whose norm exceeds eps, linf clamps
    each element, token-linf rescales each token to max-abs eps (the SMART reference codes' step).
    `eps` may be a tensor of per-sequence radii (the leading shape of `mask` less T) for l2 and linf
    (robustness evaluation)."""
    m = _expand(mask)
    if torch.is_tensor(eps):
        radius = eps.float()
        if norm == "l2":
            scale = (radius / example_norm(delta, "l2").clamp_min(TINY)).clamp(max=1.0)
            return delta * per_sequence(scale) * m
        radius = per_sequence(radius)
        return torch.maximum(torch.minimum(delta, radius), -radius) * m
    if eps > 0:
        if norm == "l2":
            scale = (eps / example_norm(delta, "l2").clamp_min(TINY)).clamp(max=1.0)
            delta = delta * per_sequence(scale)
        elif norm == "linf":
            delta = delta.clamp(-eps, eps)
        else:
            delta = delta * (eps / delta.abs().amax(dim=-1, keepdim=True).clamp_min(TINY))
    return delta * m


def ascend(
    delta: torch.Tensor,
    grad: torch.Tensor,
    mask: torch.Tensor,
    step_size: float | torch.Tensor,
    eps: float | torch.Tensor,
    norm: str = "l2",
    token_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """One normalized-gradient ascent step and projection; returns a new fp32 leaf that requires grad.

    `token_scale` (the shape of `mask`) scales each token's step (TextAT's token-level normalization)."""
    step = direction(grad, mask, norm) * (per_sequence(step_size) if torch.is_tensor(step_size) else step_size)
    if token_scale is not None:
        step = step * token_scale.unsqueeze(-1)
    return project(delta.detach() + step, mask, eps, norm).requires_grad_()


def raw_ascend(
    delta: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, step_size: float, eps: float, norm: str
) -> torch.Tensor:
    """The SMART reference codes' step (mt-dnn, smart-pytorch): `step_size` times the gradient as it is, not
    normalized, then the projection; returns a new fp32 leaf that requires grad. Not for a gradient scaled by
    AMP's GradScaler (its scale would change the step)."""
    return project(delta.detach() + _finite(grad, mask) * step_size, mask, eps, norm).requires_grad_()
