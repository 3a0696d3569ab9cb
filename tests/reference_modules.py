"""Hand-written torch modules with torchvision's and Ultralytics' key names, and the specs
they implement, for the weights tests (torchvision itself is not needed)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

TINY = """
block basic(width, stride = 1) {
  residual {
    conv width 3x3 /stride pad 1 -> bn -> relu
    conv width 3x3 pad 1 -> bn
  }
  -> relu
}

network tiny(classes = 10) {
  input image: 3 x 32 x 32
  conv1: conv 8 7x7 /2 pad 3
  bn1: bn
  relu
  maxpool 3x3 /2 pad 1
  layer1: basic(8) x 1
  layer2: basic(16, stride = 2) -> basic(16)
  avgpool: gap
  flatten
  fc: linear classes
}
"""

# A block registers its projection before its branch (RegNet), another owns a layer scale
# listed before its children (ConvNeXt); the head is a 1x1 convolution where the reference has
# a linear layer.
MIXED = """
network mixed {
  input image: 3 x 16 x 16
  stem: conv 8 3x3 pad 1 -> bn -> relu
  s1: residual {
    conv 16 1x1 -> bn -> relu
    conv 16 3x3 pad 1 -> bn
  }
  relu
  s2: residual {
    conv 16 7x7 pad 3 groups=16 -> conv 64 1x1 -> relu -> conv 16 1x1
    conv 16 1x1 groups=16 bias=false
  }
  gap
  head: conv 5 1x1
}
"""

YOLO_LIKE = """
block cbs(filters, stride = 1) {
  conv: conv filters 3x3 /stride pad 1
  bn: bn
  silu
}

network yolo_like {
  input image: 3 x 32 x 32
  stem: cbs(8, 2)
  down: cbs(16, 2)
  head: conv 6 1x1
}
"""


def randomized(module: nn.Module) -> nn.Module:
    """Random values in every tensor (batch-norm statistics too), eval mode."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator)
                tensor.copy_(values + 0.5 if name.endswith("running_var") else values - 0.5)
    return module.eval()


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock's attribute names."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TinyResNet(nn.Module):
    """torchvision.models.ResNet's names at a small size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.layer2(self.layer1(x))), 1))


class RegBlock(nn.Module):
    """torchvision's ResBottleneckBlock order: the projection registered before the branch."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.f = nn.Sequential(OrderedDict(
            a=nn.Conv2d(8, 16, 1, bias=False), a_bn=nn.BatchNorm2d(16), a_relu=nn.ReLU(),
            b=nn.Conv2d(16, 16, 3, padding=1, bias=False), b_bn=nn.BatchNorm2d(16)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(x) + self.f(x))


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: its own layer scale is listed before its children."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(channels, channels, 7, padding=3, groups=channels),
                                   nn.Conv2d(channels, 4 * channels, 1), nn.ReLU(),
                                   nn.Conv2d(4 * channels, channels, 1))
        self.layer_scale = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale * self.block(x)


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.trunk = nn.Sequential(RegBlock(), CNBlock(16))
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(self.stem(x)).mean((2, 3)))


class Conv(nn.Module):
    """ultralytics.nn.modules.Conv: conv, bn, act."""

    def __init__(self, c1: int, c2: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-5)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class YoloLike(nn.Module):
    """Ultralytics' layout: every layer an index of ``model``."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(Conv(3, 8, 2), Conv(8, 16, 2), nn.Conv2d(16, 6, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
