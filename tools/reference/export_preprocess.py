"""Reference fixtures for kd-cli's image preprocessing (crates/kd-cli/src/preprocess.rs).

Writes two small PNG images and the tensors torchvision's evaluation transform makes of them
into crates/kd-cli/tests/fixtures/:

    preprocess_rgb.png, preprocess_grey.png     57x43 RGB and 20x23 grey test images
    preprocess_<case>.npy                       float32 [C, H, W] after
        T.Compose([T.Resize(floor(size / crop_pct), interpolation), T.CenterCrop(size),
                   T.ToTensor(), T.Normalize(mean, std)])

The images are smooth gradients and waves with a sharp-edged square and mild noise (seeded),
so that both smooth regions and edges are compared. Run with torchvision 0.24.0 and Pillow:

    ~/.kd-refenv/bin/python tools/reference/export_preprocess.py
"""

import math
import pathlib

import numpy as np
import torchvision.transforms as T
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-cli/tests/fixtures"
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
FASHION = ((0.2860,), (0.3530,))
MODES = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}


def test_image(width, height, channels, rng):
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = []
    for c in range(channels):
        wave = 60 * np.sin(x / (3.0 + c) + y / 5.0) + 90 * x / width + 50 * y / height
        square = np.where((x > width / 4) & (x < width / 2) & (y > height / 3) & (y < 0.8 * height), 70, 0)
        planes.append(wave + square + 40 + rng.normal(0, 6, size=x.shape))
    pixels = np.clip(np.stack(planes, -1), 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, "L" if channels == 1 else "RGB")


def reference(image, size, mode, crop_pct, stats, name):
    transform = T.Compose([
        T.Resize(math.floor(size / crop_pct), interpolation=MODES[mode]),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(*stats),
    ])
    out = transform(image).numpy().astype(np.float32)
    np.save(OUT / f"preprocess_{name}.npy", out)
    print(name, out.shape)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261201)
    rgb = test_image(57, 43, 3, rng)
    grey = test_image(20, 23, 1, rng)
    rgb.save(OUT / "preprocess_rgb.png")
    grey.save(OUT / "preprocess_grey.png")
    rgb, grey = Image.open(OUT / "preprocess_rgb.png"), Image.open(OUT / "preprocess_grey.png")
    reference(rgb, 24, "bilinear", 0.875, IMAGENET, "rgb_bilinear")
    reference(rgb, 24, "bicubic", 0.9, IMAGENET, "rgb_bicubic")
    reference(grey, 16, "bilinear", 1.0, FASHION, "grey_bilinear")
    reference(grey.convert("RGB"), 16, "bicubic", 0.875, IMAGENET, "grey_as_rgb_bicubic")


if __name__ == "__main__":
    main()
