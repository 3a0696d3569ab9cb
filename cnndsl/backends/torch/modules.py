"""Small modules that PyTorch lacks; the emitter copies their source into generated files.

Keep each class self-contained (only ``torch``, ``nn`` and ``F`` names), because
:mod:`cnndsl.backends.torch.emit` prints it verbatim into standalone code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PaddedConv2d(nn.Conv2d):
    """A convolution with asymmetric zero padding (top, left, bottom, right), as ``pad same``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: tuple[int, int, int, int] = (0, 0, 0, 0),
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, dilation=dilation,
            groups=groups, bias=bias,
        )
        top, left, bottom, right = padding
        self.pad = (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


class ChannelMaxPool(nn.Module):
    """Max over non-overlapping groups of ``kernel`` channels: C -> C / kernel."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (-1, self.kernel)).amax(2)


HELPERS: dict[str, type[nn.Module]] = {
    "PaddedConv2d": PaddedConv2d,
    "ChannelMaxPool": ChannelMaxPool,
}
