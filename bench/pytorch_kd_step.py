"""The KD training step of `kd bench`, in PyTorch, for side-by-side timing.

One step: the teacher's forward pass under no_grad in eval mode, the student's forward and
backward passes, SuperGradients' KDLogitsLoss (0.5 * CE + 0.5 * KL(teacher || student),
batchmean), and an SGD step (momentum 0.9). Same models, batch and input as `kd bench`.
`--part student` times the student's step alone (cross-entropy), `--part teacher` the
teacher's forward pass alone.

    python bench/pytorch_kd_step.py --config fashion --threads 2 --runs 5

Prints one JSON object per configuration (images per second of each run, their median, and
the process's peak resident memory).
"""

import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
from export_models import SmallCnn  # noqa: E402  (the kd-models SmallCnn, written in PyTorch)


def small_input(name, in_channels, num_classes):
    """A torchvision ResNet with kd's small-input stem: 3x3 stride-1 conv, no max-pool."""
    model = getattr(torchvision.models, name)(num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model


CONFIGS = {
    "fashion": dict(
        teacher=lambda: small_input("resnet18", 1, 10),
        student=lambda: SmallCnn(1, 10),
        input=(1, 28, 28),
        classes=10,
        batch=128,
    ),
    "cifar": dict(
        teacher=lambda: small_input("resnet50", 3, 100),
        student=lambda: small_input("resnet18", 3, 100),
        input=(3, 32, 32),
        classes=100,
        batch=64,
    ),
}


def kd_logits_loss(student, teacher, target, coeff=0.5):
    task = F.cross_entropy(student, target)
    distill = F.kl_div(F.log_softmax(student, 1), F.softmax(teacher, 1), reduction="batchmean")
    return (1 - coeff) * task + coeff * distill


def run(name, warmup, steps, runs, part="kd"):
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    teacher = cfg["teacher"]().eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = cfg["student"]().train()
    optim = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(cfg["batch"], *cfg["input"])
    y = torch.arange(cfg["batch"]) % cfg["classes"]

    def kd_step():
        with torch.no_grad():
            t = teacher(x)
        loss = kd_logits_loss(student(x), t, y)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        return loss.item()

    def student_step():
        loss = F.cross_entropy(student(x), y)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        return loss.item()

    def teacher_step():
        with torch.no_grad():
            return teacher(x).sum().item()

    step = {"kd": kd_step, "student": student_step, "teacher": teacher_step}[part]

    for _ in range(warmup):
        step()
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * cfg["batch"] / (time.perf_counter() - start))
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="all", choices=["all", *CONFIGS])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--part", default="kd", choices=["kd", "student", "teacher"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = list(CONFIGS) if args.config == "all" else [args.config]
    for name in names:
        rates = run(name, args.warmup, args.steps, args.runs, args.part)
        median = sorted(rates)[len(rates) // 2]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps(dict(framework="pytorch", backend=f"torch {torch.__version__} cpu",
                              config=name, part=args.part, batch=CONFIGS[name]["batch"], img_per_s=rates,
                              median_img_per_s=median, peak_rss_mib=peak)))


if __name__ == "__main__":
    main()
