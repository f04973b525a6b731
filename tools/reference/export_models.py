"""Reference checkpoints and outputs for kd-models' parity tests.

Builds tiny twins of every model family with seeded random weights (batch-norm statistics
randomised too, so eval mode is really exercised), saves each state dict exactly as PyTorch
users have it, and records an input batch, the eval-mode logits and the feature taps.
Writes, per model, into crates/kd-models/tests/fixtures/:

    <name>.<ext>                 the checkpoint (.safetensors or .pth, in the layout named below)
    <name>.io.safetensors        input, logits and taps (keys "input", "logits", "tap.<name>")

Run with PyTorch 2.9.0, torchvision 0.24.0 (and safetensors) from the repository root:

    ~/.kd-refenv/bin/python tools/reference/export_models.py            # tiny fixtures
    ~/.kd-refenv/bin/python tools/reference/export_models.py --full DIR  # full-size models

`--full DIR` writes the full-size models of `cargo xtask parity` (resnet18, resnet50,
resnet32x4, wrn_40_2) into DIR instead; they are not committed. Their io files also carry
safetensors metadata: `params` (the parameter count) and `torch_seconds` (the wall time of the
eval-mode forward pass that made the logits, float32, 2 threads).
"""

import argparse
import pathlib
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "crates/kd-models/tests/fixtures"
SEED = 20261128


def randomise(model, generator):
    """Seeded random weights, including batch-norm affine parameters and statistics."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=generator) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=generator) * 0.1)
            elif t.dim() == 1 and name.endswith("weight"):
                t.copy_(torch.rand(t.shape, generator=generator) + 0.5)
            elif t.dim() == 1:
                t.copy_(torch.randn(t.shape, generator=generator) * 0.1)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=generator) * (2.0 / fan_in) ** 0.5)


# ---------------------------------------------------------------- torchvision ResNet


def narrow_resnet(block, layers, base, num_classes, in_channels=3, small_input=False):
    """torchvision's ResNet with every width divided by 64 / base (same keys and blocks)."""
    model = ResNet(block, layers, num_classes=num_classes)
    model.inplanes = base
    if small_input:
        model.conv1 = nn.Conv2d(in_channels, base, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(in_channels, base, 7, 2, 3, bias=False)
    model.bn1 = nn.BatchNorm2d(base)
    model.layer1 = model._make_layer(block, base, layers[0])
    model.layer2 = model._make_layer(block, base * 2, layers[1], stride=2)
    model.layer3 = model._make_layer(block, base * 4, layers[2], stride=2)
    model.layer4 = model._make_layer(block, base * 8, layers[3], stride=2)
    model.fc = nn.Linear(base * 8 * block.expansion, num_classes)
    return model


def torchvision_taps(model, x):
    stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    l1 = model.layer1(stem)
    l2 = model.layer2(l1)
    l3 = model.layer3(l2)
    l4 = model.layer4(l3)
    pre = torch.flatten(model.avgpool(l4), 1)
    taps = {"stem": stem, "layer1": l1, "layer2": l2, "layer3": l3, "layer4": l4, "pre_logits": pre}
    return model.fc(pre), taps


def super_gradients_keys(state):
    """The same ResNet weights under SuperGradients' names (shortcut.N, linear)."""
    out = {}
    for k, v in state.items():
        k = k.replace("downsample.0.", "shortcut.0.").replace("downsample.1.", "shortcut.1.")
        if k.startswith("fc."):
            k = "linear." + k[3:]
        out[k] = v
    return out


# ---------------------------------------------------------------- CIFAR ResNet (CRD)


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
        return self.fc(pre), {"stem": stem, "layer1": l1, "layer2": l2, "layer3": l3, "pre_logits": pre}


# ---------------------------------------------------------------- wide ResNet (CRD)


class WideBlock(nn.Module):
    """Zagoruyko & Komodakis' pre-activation block, as in RepDistiller's models/wrn.py."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.equal = c_in == c_out
        self.convShortcut = None if self.equal else nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

    def forward(self, x):
        pre = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(pre))))
        return out + (x if self.equal else self.convShortcut(pre))


class WideGroup(nn.Module):
    def __init__(self, n, c_in, c_out, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WideBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth, k, num_classes):
        super().__init__()
        n = (depth - 4) // 6
        w = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False)
        self.block1 = WideGroup(n, w[0], w[1], 1)
        self.block2 = WideGroup(n, w[1], w[2], 2)
        self.block3 = WideGroup(n, w[2], w[3], 2)
        self.bn1 = nn.BatchNorm2d(w[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(w[3], num_classes)

    def taps(self, x):
        stem = self.conv1(x)
        b1 = self.block1(stem)
        b2 = self.block2(b1)
        b3 = self.relu(self.bn1(self.block3(b2)))
        pre = F.adaptive_avg_pool2d(b3, 1).flatten(1)
        return self.fc(pre), {"stem": stem, "block1": b1, "block2": b2, "block3": b3, "pre_logits": pre}


# ---------------------------------------------------------------- SmallCnn


class ConvBnRelu(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class SmallCnn(nn.Module):
    """kd-models' SmallCnn: taps after each stage's ReLU, before its max-pool."""

    def __init__(self, in_channels=1, num_classes=10, widths=(16, 32, 64)):
        super().__init__()
        self.stage1 = ConvBnRelu(in_channels, widths[0])
        self.stage2 = ConvBnRelu(widths[0], widths[1])
        self.stage3 = ConvBnRelu(widths[1], widths[2])
        self.fc = nn.Linear(widths[2], num_classes)

    def taps(self, x):
        s1 = self.stage1(x)
        s2 = self.stage2(F.max_pool2d(s1, 2))
        s3 = self.stage3(F.max_pool2d(s2, 2))
        pre = torch.flatten(F.adaptive_avg_pool2d(s3, 1), 1)
        return self.fc(pre), {"stage1": s1, "stage2": s2, "stage3": s3, "pre_logits": pre}

    def forward(self, x):
        return self.taps(x)[0]


# ---------------------------------------------------------------- fixtures


def tiny_models():
    """name -> (model, taps_fn, input shape, checkpoint layout)."""
    basic = narrow_resnet(BasicBlock, [1, 1, 1, 1], 8, 10)
    return {
        "resnet_basic_tiny": (basic, lambda x: torchvision_taps(basic, x), (2, 3, 64, 64), "safetensors"),
        "resnet_bottleneck_tiny": (
            (m := narrow_resnet(Bottleneck, [1, 2, 1, 1], 8, 10)),
            lambda x, m=m: torchvision_taps(m, x),
            (2, 3, 64, 64),
            "pth",
        ),
        "resnet_small_input_tiny": (
            (s := narrow_resnet(BasicBlock, [2, 1, 1, 1], 8, 10, in_channels=1, small_input=True)),
            lambda x, s=s: torchvision_taps(s, x),
            (2, 1, 28, 28),
            "safetensors",
        ),
        "resnet8_cifar": ((c := ResNetCifar(8, (16, 16, 32, 64), 10)), c.taps, (2, 3, 32, 32), "pth"),
        "wrn_10_1": ((w := WideResNet(10, 1, 10)), w.taps, (2, 3, 32, 32), "safetensors"),
        "small_cnn_sg": ((q := SmallCnn()), q.taps, (2, 1, 28, 28), "sg"),
        # A 1000-class teacher for `checkpoint_num_classes` (kd-recipes tests).
        "small_cnn_1000": ((t := SmallCnn(num_classes=1000)), t.taps, (2, 1, 28, 28), "safetensors"),
    }


def full_models():
    r18 = torchvision.models.resnet18()
    r50 = torchvision.models.resnet50()
    return {
        "resnet18": (r18, lambda x: torchvision_taps(r18, x), (2, 3, 224, 224), "pth"),
        "resnet50": (r50, lambda x: torchvision_taps(r50, x), (2, 3, 224, 224), "pth"),
        "resnet32x4": ((c := ResNetCifar(32, (32, 64, 128, 256), 100)), c.taps, (2, 3, 32, 32), "pth"),
        "wrn_40_2": ((w := WideResNet(40, 2, 100)), w.taps, (2, 3, 32, 32), "pth"),
    }


def save_checkpoint(model, layout, path_stem, generator):
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if layout == "safetensors":
        path = path_stem.with_suffix(".safetensors")
        save_file(state, str(path))
    elif layout == "pth":
        path = path_stem.with_suffix(".pth")
        torch.save(state, path)
    elif layout == "sg":
        # SuperGradients' ckpt_best.pth: DDP-prefixed `net` and `ema_net`, with the EMA
        # weights (the ones kd must load) differing from `net`.
        ema = {k: v.clone() for k, v in state.items()}
        noisy = {
            k: (v + torch.randn(v.shape, generator=generator) if v.is_floating_point() else v)
            for k, v in state.items()
        }
        path = path_stem.with_suffix(".pth")
        torch.save(
            {
                "net": {"module." + k: v for k, v in noisy.items()},
                "ema_net": {"module." + k: v for k, v in ema.items()},
                "epoch": 7,
                "acc": 0.5,
            },
            path,
        )
    else:
        raise ValueError(layout)
    return path


def export(models, out_dir, timed=False):
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(SEED)
    for name, (model, taps_fn, input_shape, layout) in models.items():
        randomise(model, generator)
        model.eval()
        x = torch.randn(input_shape, generator=generator)
        start = time.perf_counter()
        with torch.no_grad():
            logits, taps = taps_fn(x)
        seconds = time.perf_counter() - start
        ckpt = save_checkpoint(model, layout, out_dir / name, generator)
        io = {"input": x.contiguous(), "logits": logits.contiguous()}
        io.update({f"tap.{k}": v.contiguous() for k, v in taps.items()})
        params = sum(p.numel() for p in model.parameters())
        metadata = {"params": str(params), "torch_seconds": f"{seconds:.6f}"} if timed else None
        save_file(io, str(out_dir / f"{name}.io.safetensors"), metadata=metadata)
        print(f"{name}: {ckpt.name}, {params} parameters, logits[0][:3] = {logits[0][:3].tolist()}")
        if name == "resnet_basic_tiny":
            # The same weights under SuperGradients' key names, as a .pth.
            torch.save(super_gradients_keys(model.state_dict()), out_dir / f"{name}_sg_names.pth")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", type=pathlib.Path, help="write full-size models here instead")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.full:
        export(full_models(), args.full, timed=True)
    else:
        export(tiny_models(), FIXTURES)
        for depth, k in [(16, 2), (40, 1), (40, 2)]:
            m = WideResNet(depth, k, 100)
            print(f"wrn_{depth}_{k}: {sum(p.numel() for p in m.parameters())} parameters")


if __name__ == "__main__":
    main()
