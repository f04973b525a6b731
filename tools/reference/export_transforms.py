"""Reference fixtures for kd-data's transforms: torchvision, timm and Pillow outputs with fixed,
explicit parameters.

Writes into crates/kd-data/tests/fixtures/:

    transform_input.png         a deterministic 3x37x53 RGB test image (smooth gradients, a
                                checkerboard patch, a bright disc and a dark bar, so resampling,
                                histograms and colour operations all have something to do)
    transforms.safetensors      one tensor [C, H, W] per case below: float32 in [0, 1] for
                                torchvision cases, uint8 levels for Pillow (timm) cases
    transforms.json             the explicit parameters of every case, and timm's
                                RandAugment level-to-argument values

read by crates/kd-data/tests/transforms_reference.rs. Run from anywhere with torch 2.9.0,
torchvision 0.24.0, timm and Pillow (the ~/.kd-refenv venv):

    ~/.kd-refenv/bin/python tools/reference/export_transforms.py

torchvision cases run on the float image `uint8 / 255` (antialias=True for resizes; bicubic
outputs are clamped to [0, 1], as the 8-bit PIL path would). timm's RandAugment operations run
on the PIL image, as timm applies them, and are stored as uint8.
"""

import json
import pathlib
import random

import numpy as np
import safetensors.torch
import torch
import torchvision.transforms.functional as F
from PIL import Image
from timm.data import auto_augment as aa
from torchvision.transforms import InterpolationMode

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-data/tests/fixtures"
H, W = 37, 53
FILL = (124, 116, 104)  # SuperGradients' RandAugment fill: the ImageNet mean in 8-bit levels


def test_image() -> np.ndarray:
    """The [H, W, 3] uint8 test image."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r = 255 * x / (W - 1)
    g = 255 * (0.5 + 0.5 * np.sin(x / 5.0 + y / 7.0))
    b = 255 * y / (H - 1)
    img = np.stack([r, g, b], axis=-1)
    checker = ((x // 3 + y // 3) % 2 == 0) & (x < 20) & (y < 15)
    img[checker] = [230, 40, 90]
    disc = (x - 38) ** 2 + (y - 24) ** 2 < 36
    img[disc] = [250, 245, 200]
    img[30:33, 5:45] = [10, 20, 30]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    hwc = test_image()
    pil = Image.fromarray(hwc, mode="RGB")
    pil.save(OUT / "transform_input.png")
    x = torch.from_numpy(hwc).permute(2, 0, 1).float() / 255.0  # [3, H, W]

    tensors: dict[str, torch.Tensor] = {}
    cases: dict[str, dict] = {}

    def add(name: str, out: torch.Tensor, params: dict, kind: str, tol: str) -> None:
        tensors[name] = out.contiguous() if out.dtype == torch.uint8 else out.contiguous().float()
        cases[name] = {"kind": kind, "params": params, "tolerance": tol}

    # Crops and flips: exact.
    add("crop", F.crop(x, 5, 7, 20, 30), {"top": 5, "left": 7, "height": 20, "width": 30},
        "crop", "exact")
    # RandomCrop(32, padding=4) at offset (0, 2) of the padded image.
    padded = F.pad(x, [4, 4, 4, 4], fill=0)
    add("pad_crop", F.crop(padded, 0, 2, 32, 32),
        {"top": -4, "left": -2, "height": 32, "width": 32}, "crop", "exact")
    add("center_crop_small", F.center_crop(x, [24, 24]), {"height": 24, "width": 24},
        "center_crop", "exact")
    add("center_crop_odd", F.center_crop(x, [20, 31]), {"height": 20, "width": 31},
        "center_crop", "exact")
    add("center_crop_large", F.center_crop(x, [40, 60]), {"height": 40, "width": 60},
        "center_crop", "exact")
    add("hflip", F.hflip(x), {}, "hflip", "exact")

    # Resizes: antialiased, 1/255 mean absolute error.
    modes = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}
    for filt, mode in modes.items():
        for size in ([20, 30], [50, 70], [9, 61]):
            out = F.resize(x, size, interpolation=mode, antialias=True).clamp(0, 1)
            add(f"resize_{filt}_{size[0]}x{size[1]}", out, {"size": size, "filter": filt},
                "resize", "mae")
        out = F.resized_crop(x, 3, 5, 25, 31, [16, 16], interpolation=mode, antialias=True)
        add(f"resized_crop_{filt}", out.clamp(0, 1),
            {"top": 3, "left": 5, "height": 25, "width": 31, "size": [16, 16], "filter": filt},
            "resized_crop", "mae")
    out = F.resize(x, 24, interpolation=InterpolationMode.BILINEAR, antialias=True)
    add("resize_shorter_24", out, {"shorter": 24, "filter": "bilinear"}, "resize_shorter", "mae")

    # ColorJitter's operations: 1/255 mean absolute error.
    add("brightness", F.adjust_brightness(x, 1.3), {"factor": 1.3}, "brightness", "mae")
    add("contrast", F.adjust_contrast(x, 0.6), {"factor": 0.6}, "contrast", "mae")
    add("saturation", F.adjust_saturation(x, 1.7), {"factor": 1.7}, "saturation", "mae")
    add("hue", F.adjust_hue(x, 0.12), {"factor": 0.12}, "hue", "mae")
    add("hue_negative", F.adjust_hue(x, -0.31), {"factor": -0.31}, "hue", "mae")
    # torchvision ColorJitter applies the four in the order of a permutation.
    order, factors = [2, 0, 3, 1], {"brightness": 0.8, "contrast": 1.25, "saturation": 0.5,
                                   "hue": -0.05}
    y = x
    for i in order:
        if i == 0:
            y = F.adjust_brightness(y, factors["brightness"])
        elif i == 1:
            y = F.adjust_contrast(y, factors["contrast"])
        elif i == 2:
            y = F.adjust_saturation(y, factors["saturation"])
        else:
            y = F.adjust_hue(y, factors["hue"])
    add("color_jitter", y, {"order": order, **factors}, "color_jitter", "mae")

    # RandomErasing with a constant per-channel value, and Normalize: exact.
    value = torch.tensor([0.25, -1.0, 3.0]).view(3, 1, 1)
    add("erase", F.erase(x, 4, 6, 10, 12, value),
        {"top": 4, "left": 6, "height": 10, "width": 12, "value": [0.25, -1.0, 3.0]},
        "erase", "exact")
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    add("normalize", F.normalize(x, mean, std), {"mean": mean, "std": std}, "normalize",
        "exact")

    # timm RandAugment operations on the PIL image, with explicit arguments.
    def pil_out(img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)

    lut_ops = {
        "auto_contrast": (lambda im: aa.auto_contrast(im), {}),
        "equalize": (lambda im: aa.equalize(im), {}),
        "invert": (lambda im: aa.invert(im), {}),
        "posterize": (lambda im: aa.posterize(im, 2), {"bits": 2}),
        "solarize": (lambda im: aa.solarize(im, 179), {"threshold": 179}),
        "solarize_add": (lambda im: aa.solarize_add(im, 77), {"add": 77, "threshold": 128}),
    }
    for name, (fn, params) in lut_ops.items():
        add(f"ra_{name}", pil_out(fn(pil)), params, f"ra_{name}", "exact")
    for name, fn in {"color": aa.color, "contrast": aa.contrast, "brightness": aa.brightness,
                     "sharpness": aa.sharpness}.items():
        for factor in (0.46, 1.36):
            add(f"ra_{name}_{factor}", pil_out(fn(pil, factor)), {"factor": factor},
                f"ra_{name}", "mae")
    resamples = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
    geometric = {
        "rotate": (aa.rotate, [21.0, -13.5]),
        "shear_x": (aa.shear_x, [0.21, -0.3]),
        "shear_y": (aa.shear_y, [0.21, -0.3]),
        "translate_x_rel": (aa.translate_x_rel, [0.315, -0.2]),
        "translate_y_rel": (aa.translate_y_rel, [0.315, -0.2]),
    }
    for name, (fn, args) in geometric.items():
        for arg in args:
            for filt, resample in resamples.items():
                out = fn(pil, arg, fillcolor=FILL, resample=resample)
                add(f"ra_{name}_{arg}_{filt}", pil_out(out),
                    {"arg": arg, "filter": filt, "fill": list(FILL)}, f"ra_{name}", "mae")

    # timm's level -> argument mapping, without random negation (random() <= 0.5 keeps sign).
    real_random = random.random
    random.random = lambda: 0.0
    try:
        levels = {}
        for magnitude in (0.0, 3.3, 7.0, 10.0):
            row = {}
            for name, fn in aa.LEVEL_TO_ARG.items():
                if fn is None or name.startswith(("Translate", "Desaturate", "Gaussian")):
                    continue
                row[name] = fn(magnitude, {"translate_pct": 0.45})[0]
            row["TranslateXRel"] = aa.LEVEL_TO_ARG["TranslateXRel"](magnitude, {})[0]
            row["TranslateYRel"] = aa.LEVEL_TO_ARG["TranslateYRel"](magnitude, {})[0]
            levels[str(magnitude)] = row
    finally:
        random.random = real_random

    safetensors.torch.save_file(tensors, str(OUT / "transforms.safetensors"))
    with open(OUT / "transforms.json", "w") as f:
        json.dump({"input": "transform_input.png", "shape": [3, H, W], "cases": cases,
                   "rand_augment_levels": levels}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(tensors)} cases to {OUT}")


if __name__ == "__main__":
    main()
