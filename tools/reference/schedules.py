"""Reference learning rates for kd-trainer's schedules (crates/kd-trainer/src/schedule.rs).

Writes crates/kd-trainer/tests/fixtures/schedules.json. Run with

    ~/.kd-refenv/bin/python tools/reference/schedules.py

SuperGradients sets the learning rate with callbacks (sg_trainer.py and
training/utils/callbacks/callbacks.py at commit e0ccacf8). This script replays those callbacks
batch by batch, in the order the trainer fires them, and records the lr the optimizer holds
when each batch is processed:

 1. epoch start   LinearEpochLRWarmup (warmup_mode LinearEpochLRWarmup, 0 < epoch <= E, E =
                  lr_warmup_epochs): lr = w0 + epoch * (lr0 - w0) / E, with w0 = warmup_initial_lr,
                  or lr0 / (E + 1) when it is None.
 2. batch start   LinearBatchLRWarmup (warmup_mode LinearBatchLRWarmup): for the global batch
                  g < W' = min(lr_warmup_steps, len(loader)), lr = linspace(w0, lr0, W')[g].
                  SuperGradients raises without warmup_initial_lr; kd then starts from
                  lr0 / (lr_warmup_steps + 1), and so does this script.
 3. the optimizer step (every batch_accumulate-th global batch) uses the lr set so far;
 4. after the step CosineLRScheduler, PolyLRScheduler, ExponentialLRScheduler compute the lr from
                  this batch's position (so it applies from the next step):
      cosine  it = max(0, ipe * (epoch - E) + batch - W), max_it = ipe * (max_epochs - E - C) - W,
              lr = 0.5 lr0 (1 + cos(pi it / (max_it + 1))), then lr (1 - r) + lr0 r
              (r = cosine_final_lr_ratio); active for E <= epoch < max_epochs - C, or, when
              W = lr_warmup_steps > 0, from global batch W on until the cooldown (kd's one
              change: SuperGradients forgets the cooldown in that case, and its cosine rises
              again past max_it);
      poly    lr = lr0 (1 - it / max_it)^0.9, it = (ipe (epoch - E) + batch) / k,
              max_it = ipe (max_epochs - E - C) / k; active for E <= epoch < max_epochs - C;
      exp     lr = lr0 f^((ipe (epoch - E) + batch) / ipe); active for E <= epoch < max_epochs - C;
 5. epoch end     StepLRScheduler (epoch >= E): lr = lr0 f^(number of lr_updates <= epoch),
                  so it applies from the next epoch.

The optimizer starts at lr0 = initial_lr. C = lr_cooldown_epochs, k = batch_accumulate,
ipe = batches per epoch. Without lr_mode (kd's constant schedule) only the warmups act.
Values are float64.
"""

import json
import math
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-trainer/tests/fixtures/schedules.json"


def after_step(c, epoch, batch):
    """The lr a per-step scheduler sets after the optimizer step of (epoch, batch), or None."""
    mode = c["lr_mode"]
    lr0 = c["initial_lr"]
    ipe = c["iters_per_epoch"]
    e_w = c["lr_warmup_epochs"]
    w = c["lr_warmup_steps"]
    cd = c["lr_cooldown_epochs"]
    max_epochs = c["max_epochs"]
    k = c["batch_accumulate"]
    in_decay = e_w <= epoch < max_epochs - cd
    if mode == "CosineLRScheduler":
        # kd stops the cosine at the cooldown also with a step warmup; SuperGradients then
        # checks only `ipe * epoch + batch >= w`, and its lr rises again past max_it.
        enabled = (ipe * epoch + batch >= w and epoch < max_epochs - cd) if w > 0 else in_decay
        if not enabled:
            return None
        it = max(0, ipe * (epoch - e_w) + batch - w)
        max_it = ipe * (max_epochs - e_w - cd) - w
        r = c["cosine_final_lr_ratio"]
        lr = 0.5 * lr0 * (1.0 + math.cos(it / (max_it + 1) * math.pi))
        return lr * (1 - r) + lr0 * r
    if mode == "PolyLRScheduler":
        if not in_decay:
            return None
        it = (ipe * (epoch - e_w) + batch) / k
        max_it = ipe * (max_epochs - e_w - cd) / k
        return lr0 * pow(1.0 - it / max_it, 0.9)
    if mode == "ExponentialLRScheduler":
        if not in_decay:
            return None
        it = ipe * (epoch - e_w) + batch
        return lr0 * c["lr_decay_factor"] ** (it / ipe)
    return None


def simulate(c):
    lr0 = c["initial_lr"]
    ipe = c["iters_per_epoch"]
    e_w = c["lr_warmup_epochs"]
    w = c["lr_warmup_steps"]
    k = c["batch_accumulate"]
    w0 = c["warmup_initial_lr"]
    epoch_warmup = c["warmup_mode"] == "LinearEpochLRWarmup"
    batch_warmup = c["warmup_mode"] == "LinearBatchLRWarmup"
    if epoch_warmup:
        start = w0 if w0 is not None else lr0 / (e_w + 1)
        step = (lr0 - start) / e_w if e_w > 0 else 0.0
    if batch_warmup:
        start_b = w0 if w0 is not None else lr0 / (w + 1)
        w_capped = min(w, ipe)
        ramp = np.linspace(start_b, lr0, num=w_capped, endpoint=True)
    lr = lr0
    out = []
    for epoch in range(c["max_epochs"]):
        if epoch_warmup and e_w > 0 and e_w >= epoch:
            lr = start + epoch * step
        for batch in range(ipe):
            g = epoch * ipe + batch
            if batch_warmup and g < w_capped:
                lr = float(ramp[g])
            out.append(lr)
            if (g + 1) % k == 0:
                v = after_step(c, epoch, batch)
                if v is not None:
                    lr = v
        if c["lr_mode"] == "StepLRScheduler" and e_w <= epoch:
            passed = len([u for u in c["lr_updates"] if u <= epoch])
            lr = lr0 * c["lr_decay_factor"] ** passed
    return out


def case(name, **kw):
    c = {
        "name": name,
        "initial_lr": 0.1,
        "lr_mode": "CosineLRScheduler",
        "cosine_final_lr_ratio": 0.01,
        "lr_updates": [],
        "lr_decay_factor": None,
        "lr_warmup_epochs": 0,
        "lr_warmup_steps": 0,
        "warmup_mode": "LinearEpochLRWarmup",
        "warmup_initial_lr": None,
        "lr_cooldown_epochs": 0,
        "iters_per_epoch": 5,
        "max_epochs": 4,
        "batch_accumulate": 1,
    }
    c.update(kw)
    c["lrs"] = simulate(c)
    return c


def main():
    cases = [
        case("cosine"),
        case("cosine_ratio_epoch_warmup_cooldown", cosine_final_lr_ratio=0.1, lr_warmup_epochs=2,
             lr_cooldown_epochs=1, max_epochs=7, initial_lr=0.4),
        case("cosine_epoch_warmup_from_given_lr", lr_warmup_epochs=3, warmup_initial_lr=0.001,
             max_epochs=6, iters_per_epoch=3),
        case("cosine_step_warmup", warmup_mode="LinearBatchLRWarmup", lr_warmup_steps=3,
             warmup_initial_lr=0.0, max_epochs=3),
        case("cosine_step_warmup_capped_default_start_cooldown", warmup_mode="LinearBatchLRWarmup",
             lr_warmup_steps=7, lr_cooldown_epochs=1, max_epochs=5, iters_per_epoch=4),
        case("cosine_accumulate", batch_accumulate=2, max_epochs=3),
        case("step", lr_mode="StepLRScheduler", lr_updates=[1, 3], lr_decay_factor=0.1,
             max_epochs=5, iters_per_epoch=2),
        case("step_epoch_warmup", lr_mode="StepLRScheduler", lr_updates=[2, 4], lr_decay_factor=0.5,
             lr_warmup_epochs=2, max_epochs=6, iters_per_epoch=2),
        case("poly_warmup_cooldown", lr_mode="PolyLRScheduler", lr_warmup_epochs=1,
             lr_cooldown_epochs=1, max_epochs=5, iters_per_epoch=4),
        case("poly_step_warmup_accumulate", lr_mode="PolyLRScheduler",
             warmup_mode="LinearBatchLRWarmup", lr_warmup_steps=4, warmup_initial_lr=0.01,
             batch_accumulate=2, max_epochs=3, iters_per_epoch=6),
        case("exponential", lr_mode="ExponentialLRScheduler", lr_decay_factor=0.9, max_epochs=4),
        case("exponential_warmup_cooldown", lr_mode="ExponentialLRScheduler", lr_decay_factor=0.8,
             lr_warmup_epochs=1, lr_cooldown_epochs=2, max_epochs=6, iters_per_epoch=3),
        case("constant_epoch_warmup", lr_mode=None, lr_warmup_epochs=2, max_epochs=4),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
