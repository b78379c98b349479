"""Saliency model: image encoder, readout and learned centre bias to a log-density.

In the manner of DeepGaze (Kümmerer et al. 2015 ICLR workshop "Deep Gaze I"; 2017
"DeepGaze II"): features from an encoder, a 1x1-convolution readout to one channel,
upsampled to the grid, plus a learned centre-bias map, then a softmax over the valid
pixels so the output is a probability distribution of where the next fixation lands.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def small_cnn(width: int) -> tuple[nn.Module, int, int]:
    """Four 3x3 conv blocks, stride 4 overall; returns (module, out channels, stride)."""

    def block(cin: int, cout: int, stride: int, dilation: int = 1) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
            nn.GroupNorm(4, cout),
            nn.ReLU(inplace=True),
        )

    net = nn.Sequential(
        block(3, width, 1),
        block(width, 2 * width, 2),
        block(2 * width, 2 * width, 2),
        block(2 * width, 2 * width, 1, dilation=2),
    )
    return net, 2 * width, 4


def resnet18_trunk() -> tuple[nn.Module, int, int]:
    """torchvision ResNet-18 up to layer2 (stride 8), built with ``weights=None``: nothing is
    downloaded, so it starts from random initialisation."""
    from torchvision.models import resnet18

    r = resnet18(weights=None)
    net = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2)
    return net, 128, 8


class SaliencyNet(nn.Module):
    """Returns (B, S, S) natural-log probabilities that sum to 1 over each valid region."""

    def __init__(self, encoder: str = "small_cnn", width: int = 32, centre_bias_size: int = 16):
        super().__init__()
        if encoder == "small_cnn":
            self.encoder, channels, _ = small_cnn(width)
        elif encoder == "resnet18":
            self.encoder, channels, _ = resnet18_trunk()
        else:
            raise ValueError(f"unknown encoder {encoder!r}; choose small_cnn or resnet18")
        self.readout = nn.Sequential(
            nn.Conv2d(channels, 16, 1), nn.ReLU(inplace=True), nn.Conv2d(16, 1, 1)
        )
        self.centre_bias = nn.Parameter(torch.zeros(1, 1, centre_bias_size, centre_bias_size))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        feats = self.encoder((image - self.mean) / self.std)
        logits = F.interpolate(
            self.readout(feats), size=(h, w), mode="bilinear", align_corners=False
        )
        bias = F.interpolate(self.centre_bias, size=(h, w), mode="bilinear", align_corners=False)
        logits = (logits + bias).squeeze(1).masked_fill(~mask, float("-inf"))
        return torch.log_softmax(logits.reshape(b, -1), dim=1).reshape(b, h, w)
