"""What the model sees: the clip minus its static background, optionally with position channels.

The cameras are fixed, so the per-pixel temporal mean is (nearly) the static
background: the checkerboard ground that fills most pixels. Subtracting it
leaves the moving ball, the only thing the labels depend on; background
subtraction by a temporal mean (Piccardi, 2004, "Background subtraction
techniques: a review", running-average family). The tiny i3d learnt nothing
in five epochs on 400 raw clips (val accuracy 0.375) and reached 0.525 with
the background removed.

``position_channels`` replaces the three colour channels by the motion energy
``m`` (mean absolute residual over colour) and ``m * u``, ``m * v`` with
``u, v`` the pixel's coordinates in [-1, 1]: the extractors average-pool
their features over space, which keeps *what* moved but not *where*; with
these channels a spatial average still carries the ball's image centroid
(mean(m u) / mean(m)), the idea of CoordConv (Liu et al., 2018) for a network
whose head we do not own.
"""

from __future__ import annotations

import torch


def coordinate_grid(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.linspace(-1.0, 1.0, h, device=device).view(h, 1).expand(h, w)
    u = torch.linspace(-1.0, 1.0, w, device=device).view(1, w).expand(h, w)
    return u, v


def prepare_video(
    video: torch.Tensor, subtract_background: bool, position_channels: bool = False
) -> torch.Tensor:
    """``video`` (B, V, 3, T, H, W) float, normalised per channel (``TrajectoryDataset.normalize_batch``)."""
    if subtract_background:
        video = video - video.mean(dim=3, keepdim=True)
    if position_channels:
        energy = video.abs().mean(dim=2, keepdim=True)  # (B, V, 1, T, H, W)
        u, v = coordinate_grid(video.shape[-2], video.shape[-1], video.device)
        video = torch.cat([energy, energy * u, energy * v], dim=2)
    return video
