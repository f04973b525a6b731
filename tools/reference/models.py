"""Reference outputs for kd-models: torchvision ResNets, a CIFAR ResNet and the SmallCnn student.

Writes crates/kd-models/tests/fixtures/<model>.json, read by crates/kd-models/tests/parity.rs.
Run from anywhere with PyTorch 2.9.0 and torchvision 0.24.0:

    ~/.kd-refenv/bin/python tools/reference/models.py

No weight files are involved: every state-dict tensor is filled from a formula of its key and
of the element's flat (row-major) index i in PyTorch's layout, computed in float64 and rounded
to float32:

    h(key)  = (sum of the key's UTF-8 bytes mod 1000) / 100
    s       = sin(0.37 * i + h(key))
    running_var               1 + 0.5 * |s|
    running_mean              0.1 * s
    1-D "*.weight" (BN scale) 1 + 0.2 * s
    1-D "*.bias"              0.1 * s
    >= 2-D weights            s * sqrt(3 / fan_in), fan_in = numel / shape[0]
    num_batches_tracked       ignored

The input batch uses the same formula with key "input": x[i] = sin(0.37 * i + h("input")).
The networks run in eval mode (batch norm uses the running statistics) in float32. Each
fixture holds the state-dict keys and shapes, the logits and, per feature tap, its shape, sum
and mean. The Rust test
rebuilds the same tensors through a ModuleMapper and the key map of
crates/kd-models/src/resnet/weights.rs.
"""

import json
import math
import pathlib

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-models/tests/fixtures"


def key_hash(key):
    return (sum(key.encode("utf-8")) % 1000) / 100.0


def formula(key, shape):
    """The value of every element of tensor `key` of `shape` (PyTorch layout), float32."""
    n = int(np.prod(shape)) if len(shape) > 0 else 1
    s = np.sin(0.37 * np.arange(n, dtype=np.float64) + key_hash(key))
    if key == "input":
        v = s
    elif key.endswith("running_var"):
        v = 1.0 + 0.5 * np.abs(s)
    elif key.endswith("running_mean"):
        v = 0.1 * s
    elif len(shape) == 1 and key.endswith("weight"):
        v = 1.0 + 0.2 * s
    elif len(shape) == 1 and key.endswith("bias"):
        v = 0.1 * s
    elif len(shape) >= 2 and key.endswith("weight"):
        fan_in = n // shape[0]
        v = s * math.sqrt(3.0 / fan_in)
    else:
        raise ValueError(f"no formula for {key} {shape}")
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def fill(model):
    state = model.state_dict()
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        tensor.copy_(formula(key, tuple(tensor.shape)))


class ConvBnRelu(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class SmallCnn(nn.Module):
    """The kd-models SmallCnn: taps after each stage's ReLU, before its max-pool."""

    def __init__(self, in_channels=1, num_classes=10, widths=(16, 32, 64)):
        super().__init__()
        self.stage1 = ConvBnRelu(in_channels, widths[0])
        self.stage2 = ConvBnRelu(widths[0], widths[1])
        self.stage3 = ConvBnRelu(widths[1], widths[2])
        self.pool = nn.MaxPool2d(2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)

    def taps(self, x):
        s1 = self.stage1(x)
        s2 = self.stage2(self.pool(s1))
        s3 = self.stage3(self.pool(s2))
        pre = torch.flatten(self.avgpool(s3), 1)
        return self.fc(pre), {"stage1": s1, "stage2": s2, "stage3": s3, "pre_logits": pre}

    def forward(self, x):
        return self.taps(x)[0]


class ResNetCifar(nn.Module):
    """CRD's CIFAR ResNet (HobbitLong/RepDistiller models/resnet.py) with torchvision blocks."""

    def __init__(self, depth, widths, num_classes):
        super().__init__()
        n = (depth - 2) // 6
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(widths[1], n, 1)
        self.layer2 = self._make_layer(widths[2], n, 2)
        self.layer3 = self._make_layer(widths[3], n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def taps(self, x):
        stem = self.relu(self.bn1(self.conv1(x)))
        l1 = self.layer1(stem)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        pre = torch.flatten(self.avgpool(l3), 1)
        taps = {"stem": stem, "layer1": l1, "layer2": l2, "layer3": l3, "pre_logits": pre}
        return self.fc(pre), taps

    def forward(self, x):
        return self.taps(x)[0]


def torchvision_taps(model, x):
    stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    l1 = model.layer1(stem)
    l2 = model.layer2(l1)
    l3 = model.layer3(l2)
    l4 = model.layer4(l3)
    pre = torch.flatten(model.avgpool(l4), 1)
    taps = {"stem": stem, "layer1": l1, "layer2": l2, "layer3": l3, "layer4": l4, "pre_logits": pre}
    return model.fc(pre), taps


def resnet18_small():
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model, (2, 1, 28, 28), lambda x: torchvision_taps(model, x)


def resnet_bottleneck():
    model = ResNet(Bottleneck, [1, 2, 1, 1], num_classes=10)
    return model, (2, 3, 64, 64), lambda x: torchvision_taps(model, x)


def small_cnn():
    model = SmallCnn()
    return model, (2, 1, 28, 28), model.taps


def resnet8x4_cifar():
    model = ResNetCifar(8, (32, 64, 128, 256), 10)
    return model, (2, 3, 32, 32), model.taps


MODELS = {
    "resnet18_small": resnet18_small,
    "resnet_bottleneck": resnet_bottleneck,
    "small_cnn": small_cnn,
    "resnet8x4_cifar": resnet8x4_cifar,
}


def floats(t):
    return [float(v) for v in t.flatten().tolist()] if t.dim() == 1 else [floats(r) for r in t]


def main():
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for name, build in MODELS.items():
            model, input_shape, taps_fn = build()
            fill(model)
            model.eval()
            x = formula("input", input_shape)
            logits, taps = taps_fn(x)
            assert torch.allclose(logits, model(x), atol=1e-6), name
            fixture = {
                "model": name,
                "input_shape": list(input_shape),
                "num_parameters": sum(p.numel() for p in model.parameters()),
                "state_dict": {
                    k: list(v.shape)
                    for k, v in model.state_dict().items()
                    if not k.endswith("num_batches_tracked")
                },
                "logits": floats(logits),
                "taps": {
                    tap: {
                        "shape": list(t.shape),
                        "sum": float(t.double().sum()),
                        "mean": float(t.double().mean()),
                    }
                    for tap, t in taps.items()
                },
            }
            path = OUT / f"{name}.json"
            path.write_text(json.dumps(fixture, indent=1) + "\n")
            print(f"{path.name}: logits[0] = {[round(v, 4) for v in fixture['logits'][0]]}")
    # Trainable parameter counts quoted in the Rust tests.
    for depth, widths in [(20, (16, 16, 32, 64)), (8, (32, 64, 128, 256)), (32, (32, 64, 128, 256))]:
        m = ResNetCifar(depth, widths, 100)
        print(f"resnet_cifar depth {depth} widths {widths}: {sum(p.numel() for p in m.parameters())}")
    print("resnet18:", sum(p.numel() for p in torchvision.models.resnet18().parameters()))


if __name__ == "__main__":
    main()
