"""The image-folder training pipeline of `kd bench-data`, in PyTorch, for side-by-side timing.

torchvision's ImageFolder (PIL decode) and DataLoader with `--threads` worker processes
(each single-threaded, as DataLoader sets them), batch 64, shuffled. Pipelines:

- standard: RandomResizedCrop(size) (bilinear, antialiased), RandomHorizontalFlip, ToTensor,
  Normalize (ImageNet statistics);
- sg: SuperGradients' ImageNet KD recipe, through timm as SuperGradients does:
  RandomResizedCropAndInterpolation(size, interpolation="random"), RandomHorizontalFlip,
  rand_augment_transform("rand-m7-mstd0.5"), ToTensor, Normalize.

One untimed epoch starts the (persistent) workers; each timed run is one more full epoch.

    python bench/pytorch_data.py --root target/bench-data --threads 2 --runs 3

Prints one JSON object (images per second of each run, their median, the rate per thread).
"""

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def pipeline(name, size):
    tail = [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    if name == "standard":
        return transforms.Compose(
            [transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()] + tail
        )
    from timm.data.auto_augment import rand_augment_transform
    from timm.data.transforms import RandomResizedCropAndInterpolation

    hparams = dict(
        translate_const=int(size * 0.45),
        img_mean=tuple(round(255 * m) for m in MEAN),
    )
    return transforms.Compose(
        [
            RandomResizedCropAndInterpolation(size, interpolation="random"),
            transforms.RandomHorizontalFlip(),
            rand_augment_transform("rand-m7-mstd0.5", hparams),
        ]
        + tail
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--pipeline", choices=["standard", "sg"], default="standard")
    args = p.parse_args()
    torch.set_num_threads(1)
    dataset = datasets.ImageFolder(args.root, pipeline(args.pipeline, args.size))
    loader = DataLoader(
        dataset,
        batch_size=64,
        shuffle=True,
        num_workers=args.threads,
        persistent_workers=args.threads > 0,
        drop_last=False,
    )
    for _ in loader:
        pass
    rates = []
    for _ in range(args.runs):
        start = time.perf_counter()
        images = sum(batch[0].shape[0] for batch in loader)
        rates.append(images / (time.perf_counter() - start))
    median = sorted(rates)[len(rates) // 2]
    print(
        json.dumps(
            dict(
                framework="pytorch",
                pipeline=args.pipeline,
                size=args.size,
                threads=args.threads,
                img_per_s=rates,
                median_img_per_s=median,
                per_thread=median / max(args.threads, 1),
                torch=torch.__version__,
            )
        )
    )


if __name__ == "__main__":
    main()
