"""Reference values for kd-losses: SuperGradients' KDLogitsLoss and PyTorch's cross entropy.

Writes crates/kd-losses/tests/fixtures/kd_logits.json, then runs loss_bank.main(), which writes
the fixtures of the ten distillation losses without trainable parts (tools/reference/loss_bank.py),
and loss_learnable.main(), which writes those of FitNets, VID, CRD and ReviewKD
(tools/reference/loss_learnable.py). Run with
PyTorch 2.9.0:

    ~/.kd-refenv/bin/python tools/reference/losses.py

The losses are written here from their definitions, the way SuperGradients composes them
(training/losses/kd_losses.py):

    task    = F.cross_entropy(student, target, label_smoothing=eps)
    distill = nn.KLDivLoss(reduction="batchmean")(log_softmax(student / T), softmax(teacher / T)) * T**2
    total   = (1 - c) * task + c * distill

SuperGradients itself has no temperature (T = 1, no T**2 factor); "temperature": null below.
All maths runs in float32, as in training; values are printed as Python floats (float64 repr).
"""

import json
import pathlib

import torch
import torch.nn.functional as F

import loss_bank
import loss_learnable

SEED = 20240917
BATCH = 4
CLASSES = 7
OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-losses/tests/fixtures/kd_logits.json"


def floats(t):
    """A float32 tensor as nested Python floats (exact float32 values)."""
    return [float(v) for v in t.flatten().tolist()] if t.dim() == 1 else [floats(r) for r in t]


def kd_parts(student, teacher, target, coeff, temperature, label_smoothing):
    """SuperGradients' KDLogitsLoss with an optional temperature."""
    task = F.cross_entropy(student, target, label_smoothing=label_smoothing)
    t = 1.0 if temperature is None else temperature
    kl = torch.nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(student / t, dim=1), F.softmax(teacher / t, dim=1)
    )
    distill = kl if temperature is None else kl * t * t
    total = (1.0 - coeff) * task + coeff * distill
    return total, task, distill


def main():
    torch.manual_seed(SEED)
    student = (torch.randn(BATCH, CLASSES) * 3.0).float()
    teacher = (torch.randn(BATCH, CLASSES) * 3.0).float()
    hard = torch.randint(0, CLASSES, (BATCH,))
    soft = F.softmax(torch.randn(BATCH, CLASSES) * 2.0, dim=1).float()
    # Saturated logits: the softmaxes underflow to exact zeros in float32 for some classes.
    big_student = (torch.randn(BATCH, CLASSES) * 40.0).float()
    big_teacher = (torch.randn(BATCH, CLASSES) * 40.0).float()
    targets = {"hard": hard, "soft": soft}

    grad_cases = {
        (0.5, "hard", None, 0.0),
        (0.8, "soft", None, 0.1),
        (0.5, "hard", 4.0, 0.1),
        (0.8, "soft", 4.0, 0.0),
    }

    kd_cases = []
    for coeff in (0.5, 0.8):
        for kind in ("hard", "soft"):
            for temperature in (None, 4.0):
                for eps in (0.0, 0.1):
                    s = student.clone().requires_grad_(True)
                    total, task, distill = kd_parts(s, teacher, targets[kind], coeff, temperature, eps)
                    case = {
                        "inputs": "base",
                        "distillation_loss_coeff": coeff,
                        "targets": kind,
                        "temperature": temperature,
                        "label_smoothing": eps,
                        "total": total.item(),
                        "task": task.item(),
                        "distillation": distill.item(),
                        "grad": None,
                    }
                    if (coeff, kind, temperature, eps) in grad_cases:
                        total.backward()
                        case["grad"] = floats(s.grad)
                    kd_cases.append(case)
    for temperature in (None, 4.0):
        s = big_student.clone().requires_grad_(True)
        total, task, distill = kd_parts(s, big_teacher, hard, 0.5, temperature, 0.0)
        total.backward()
        kd_cases.append(
            {
                "inputs": "saturated",
                "distillation_loss_coeff": 0.5,
                "targets": "hard",
                "temperature": temperature,
                "label_smoothing": 0.0,
                "total": total.item(),
                "task": task.item(),
                "distillation": distill.item(),
                "grad": floats(s.grad),
            }
        )

    ce_cases = []
    for kind in ("hard", "soft"):
        for eps in (0.0, 0.1, 0.3):
            s = student.clone().requires_grad_(True)
            loss = F.cross_entropy(s, targets[kind], label_smoothing=eps)
            loss.backward()
            ce_cases.append(
                {"targets": kind, "label_smoothing": eps, "loss": loss.item(), "grad": floats(s.grad)}
            )

    fixture = {
        "generator": "tools/reference/losses.py",
        "torch": torch.__version__,
        "seed": SEED,
        "inputs": {
            "base": {"student": floats(student), "teacher": floats(teacher)},
            "saturated": {"student": floats(big_student), "teacher": floats(big_teacher)},
        },
        "hard_targets": [int(v) for v in hard.tolist()],
        "soft_targets": floats(soft),
        "kd_cases": kd_cases,
        "ce_cases": ce_cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(kd_cases)} KD cases, {len(ce_cases)} CE cases)")
    loss_bank.main()
    loss_learnable.main()


if __name__ == "__main__":
    main()
