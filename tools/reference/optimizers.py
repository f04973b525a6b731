"""Reference values for kd-trainer's optimizers (optim.rs, lamb.rs) and gradient helpers (grads.rs).

Writes crates/kd-trainer/tests/fixtures/optimizers.json and grads.json. Run with PyTorch 2.9.0:

    ~/.kd-refenv/bin/python tools/reference/optimizers.py

The problem: a fixed `Tiny` network, `fc(bn(x))` with bn = nn.BatchNorm1d(4) in training mode
and fc = nn.Linear(4, 3), and the quadratic loss `mean((fc(bn(x)) - y)^2)` on one
fixed batch of 6. Each case takes 5 optimizer steps (learning rates 0.05, 0.04, 0.03, 0.02, 0.01,
recomputing the gradient each time) and records every parameter after each step.

SGD, Adam, AdamW and RMSprop are torch.optim's (foreach=False). Lamb and Lion are not in
torch.optim; they are written below from their papers, with SuperGradients' options:

- Lamb (You et al. 2020, "Large Batch Optimization for Deep Learning", Algorithm 2), in the
  NVLAMB form SuperGradients uses: all gradients are first divided by ||g|| / max_grad_norm when
  the global norm ||g|| exceeds max_grad_norm; then per parameter
      m = b1 m + (1 - b1) g          ((1 - b1) becomes 1 without grad_averaging)
      v = b2 v + (1 - b2) g^2
      r = (m / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t) + eps)   (no bias correction: t -> inf)
      u = r + wd * p
      u = u * ||p|| / ||u||         (1 when either norm is 0; min(., 1) with trust_clip;
                                     only when wd != 0 or always_adapt)
      p = p - lr * u
- Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Program 1):
      p = p * (1 - lr * wd);  p = p - lr * sign(b1 m + (1 - b1) g);  m = b2 m + (1 - b2) g

zero_weight_decay_on_bias_and_bn puts fc.bias, bn.weight and bn.bias in a group with weight
decay 0 (SuperGradients' separate_zero_wd_params_groups_for_optimizer).

grads.json: torch.nn.utils.clip_grad_norm_ (one global L2 norm, grads scaled by
max_norm / (norm + 1e-6) when that is below 1) on the gradient of the first step, and the sum of
the gradients of two batches (what backward() accumulates, as SuperGradients' batch_accumulate).
"""

import json
import pathlib

import torch
from torch import nn

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-trainer/tests/fixtures"
SEED = 20250101
LRS = [0.05, 0.04, 0.03, 0.02, 0.01]


def floats(t):
    t = t.detach()
    return [float(v) for v in t.tolist()] if t.dim() == 1 else [floats(r) for r in t]


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.bn(x))


def problem():
    g = torch.Generator().manual_seed(SEED)
    init = {
        "fc.weight": torch.randn(3, 4, generator=g) * 0.5,
        "fc.bias": torch.randn(3, generator=g) * 0.5,
        "bn.weight": 1.0 + 0.3 * torch.randn(4, generator=g),
        "bn.bias": 0.3 * torch.randn(4, generator=g),
    }
    x = torch.randn(6, 4, generator=g)
    y = torch.randn(6, 3, generator=g) * 2.0
    x2 = torch.randn(6, 4, generator=g)
    y2 = torch.randn(6, 3, generator=g) * 2.0
    return init, (x, y), (x2, y2)


def model(init):
    m = Tiny()
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(init[name])
    m.train()
    return m


def loss_of(m, batch):
    x, y = batch
    return ((m(x) - y) ** 2).mean()


NO_DECAY = {"fc.bias", "bn.weight", "bn.bias"}


def groups(m, wd, zero_wd):
    named = list(m.named_parameters())
    if not zero_wd:
        return [{"params": [p for _, p in named], "weight_decay": wd}]
    return [
        {"params": [p for n, p in named if n in NO_DECAY], "weight_decay": 0.0},
        {"params": [p for n, p in named if n not in NO_DECAY], "weight_decay": wd},
    ]


class Lamb:
    """LAMB with SuperGradients' options (see the module docstring)."""

    def __init__(self, param_groups, betas, eps, max_grad_norm, trust_clip, always_adapt,
                 bias_correction, grad_averaging):
        self.param_groups = param_groups
        self.b1, self.b2 = betas
        self.eps = eps
        self.max_grad_norm = max_grad_norm
        self.trust_clip = trust_clip
        self.always_adapt = always_adapt
        self.bias_correction = bias_correction
        self.grad_averaging = grad_averaging
        self.state = {}
        self.t = 0

    @torch.no_grad()
    def step(self, lr):
        params = [p for g in self.param_groups for p in g["params"]]
        norm = torch.sqrt(sum((p.grad * p.grad).sum() for p in params))
        clip = norm / self.max_grad_norm if norm > self.max_grad_norm else torch.tensor(1.0)
        self.t += 1
        bc1 = 1 - self.b1 ** self.t if self.bias_correction else 1.0
        bc2 = 1 - self.b2 ** self.t if self.bias_correction else 1.0
        for group in self.param_groups:
            wd = group["weight_decay"]
            for p in group["params"]:
                g = p.grad / clip
                st = self.state.setdefault(p, {"m": torch.zeros_like(p), "v": torch.zeros_like(p)})
                st["m"] = self.b1 * st["m"] + ((1 - self.b1) if self.grad_averaging else 1.0) * g
                st["v"] = self.b2 * st["v"] + (1 - self.b2) * g * g
                r = (st["m"] / bc1) / (st["v"].sqrt() / (bc2 ** 0.5) + self.eps)
                u = r + wd * p if wd != 0 else r
                if wd != 0 or self.always_adapt:
                    w_norm, u_norm = p.norm(), u.norm()
                    ratio = w_norm / u_norm if (w_norm > 0 and u_norm > 0) else torch.tensor(1.0)
                    if self.trust_clip:
                        ratio = torch.clamp(ratio, max=1.0)
                    u = u * ratio
                p.sub_(lr * u)


class Lion:
    """Lion (see the module docstring)."""

    def __init__(self, param_groups, betas):
        self.param_groups = param_groups
        self.b1, self.b2 = betas
        self.state = {}

    @torch.no_grad()
    def step(self, lr):
        for group in self.param_groups:
            wd = group["weight_decay"]
            for p in group["params"]:
                m = self.state.setdefault(p, torch.zeros_like(p))
                if wd != 0:
                    p.mul_(1 - lr * wd)
                p.sub_(lr * torch.sign(self.b1 * m + (1 - self.b1) * p.grad))
                self.state[p] = self.b2 * m + (1 - self.b2) * p.grad


def build(kind, params, m):
    wd = params["weight_decay"]
    gs = groups(m, wd, params["zero_weight_decay_on_bias_and_bn"])
    if kind == "SGD":
        return torch.optim.SGD(gs, lr=LRS[0], momentum=params["momentum"],
                               dampening=params["dampening"], nesterov=params["nesterov"],
                               foreach=False)
    if kind == "Adam":
        return torch.optim.Adam(gs, lr=LRS[0], betas=params["betas"], eps=params["eps"],
                                foreach=False)
    if kind == "AdamW":
        return torch.optim.AdamW(gs, lr=LRS[0], betas=params["betas"], eps=params["eps"],
                                 foreach=False)
    if kind == "RMSprop":
        return torch.optim.RMSprop(gs, lr=LRS[0], alpha=params["alpha"], eps=params["eps"],
                                   momentum=params["momentum"], centered=params["centered"],
                                   foreach=False)
    if kind == "Lamb":
        return Lamb(gs, params["betas"], params["eps"], params["max_grad_norm"],
                    params["trust_clip"], params["always_adapt"], params["bias_correction"],
                    params["grad_averaging"])
    if kind == "Lion":
        return Lion(gs, params["betas"])
    raise ValueError(kind)


def run(kind, params, init, batch):
    m = model(init)
    opt = build(kind, params, m)
    steps = []
    for lr in LRS:
        m.zero_grad()
        loss_of(m, batch).backward()
        if isinstance(opt, torch.optim.Optimizer):
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
        else:
            opt.step(lr)
        steps.append({n: floats(p) for n, p in m.named_parameters()})
    return steps


def case(name, kind, **kw):
    params = {
        "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0,
        "betas": (0.9, 0.999), "eps": 1e-8, "alpha": 0.99, "centered": False,
        "max_grad_norm": 1.0, "trust_clip": False, "always_adapt": False,
        "bias_correction": True, "grad_averaging": True,
        "zero_weight_decay_on_bias_and_bn": False,
    }
    params.update(kw)
    return name, kind, params


CASES = [
    case("sgd_momentum", "SGD", momentum=0.9, weight_decay=1e-2),
    case("sgd_nesterov_zero_wd", "SGD", momentum=0.9, nesterov=True, weight_decay=0.05,
         zero_weight_decay_on_bias_and_bn=True),
    case("sgd_dampening", "SGD", momentum=0.5, dampening=0.3),
    case("sgd_plain", "SGD", weight_decay=1e-3),
    case("adam", "Adam", weight_decay=1e-2),
    case("adam_zero_wd", "Adam", weight_decay=0.05, betas=(0.8, 0.99), eps=1e-6,
         zero_weight_decay_on_bias_and_bn=True),
    case("adamw", "AdamW", weight_decay=0.05),
    case("rmsprop_sg_defaults", "RMSprop", momentum=0.9, weight_decay=1e-4),
    case("rmsprop_centered", "RMSprop", alpha=0.9, centered=True, weight_decay=1e-2),
    case("rmsprop_centered_momentum_zero_wd", "RMSprop", momentum=0.5, centered=True, eps=1e-3,
         weight_decay=0.1, zero_weight_decay_on_bias_and_bn=True),
    case("lamb_sg_defaults", "Lamb", eps=1e-6, weight_decay=0.01),
    case("lamb_clipped_trust_clip_zero_wd", "Lamb", eps=1e-6, weight_decay=0.1,
         max_grad_norm=0.1, trust_clip=True, zero_weight_decay_on_bias_and_bn=True),
    case("lamb_always_adapt_raw", "Lamb", eps=1e-6, betas=(0.8, 0.9), max_grad_norm=100.0,
         always_adapt=True, bias_correction=False, grad_averaging=False),
    case("lion", "Lion", betas=(0.9, 0.99), weight_decay=0.1),
    case("lion_zero_wd", "Lion", betas=(0.95, 0.98), weight_decay=1.0,
         zero_weight_decay_on_bias_and_bn=True),
]


def grads_fixture(init, batch, batch2):
    m = model(init)
    loss_of(m, batch).backward()
    first = {n: p.grad.clone() for n, p in m.named_parameters()}
    clips = []
    for max_norm in [0.05, 1e3]:
        for n, p in m.named_parameters():
            p.grad = first[n].clone()
        total = nn.utils.clip_grad_norm_(m.parameters(), max_norm)
        clips.append({
            "max_norm": max_norm,
            "total_norm": float(total),
            "grads": {n: floats(p.grad) for n, p in m.named_parameters()},
        })
    m = model(init)
    loss_of(m, batch).backward()
    loss_of(m, batch2).backward()
    summed = {n: floats(p.grad) for n, p in m.named_parameters()}
    return {"clip": clips, "accumulated": summed}


def main():
    init, batch, batch2 = problem()
    common = {
        "init": {n: floats(t) for n, t in init.items()},
        "x": floats(batch[0]), "y": floats(batch[1]),
        "x2": floats(batch2[0]), "y2": floats(batch2[1]),
        "lrs": LRS,
    }
    cases = [
        {"name": name, "optimizer": kind, "params": params, "steps": run(kind, params, init, batch)}
        for name, kind, params in CASES
    ]
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "optimizers.json").write_text(json.dumps({**common, "cases": cases}) + "\n")
    (FIXTURES / "grads.json").write_text(
        json.dumps({**common, **grads_fixture(init, batch, batch2)}) + "\n")
    print(f"wrote {FIXTURES}/optimizers.json ({len(cases)} cases) and grads.json")


if __name__ == "__main__":
    main()
