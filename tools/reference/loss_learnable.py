"""Reference values for the kd-losses distillation losses with trainable parts.

FitNets (Romero et al., ICLR 2015), VID (Ahn et al., CVPR 2019), CRD (Tian et al., ICLR 2020)
and ReviewKD (Chen et al., CVPR 2021), written here from the papers. Where a paper leaves a
convention open, the authors' code settles it (RepDistiller for FitNets, VID and CRD,
dvlab-research/ReviewKD for ReviewKD); the choices are stated next to each reference below.

Writes crates/kd-losses/tests/fixtures/{fitnets,vid,crd,review_kd}.json. Run from anywhere with
PyTorch 2.9.0:

    ~/.kd-refenv/bin/python tools/reference/loss_learnable.py

Every tensor is written as {"shape": [...], "data": [flat values, row-major]}; float32 values
are printed as Python floats (float64 repr, exact). Module weights are written under their
PyTorch state-dict names and layouts (nn.Linear weights are [out, in]); the Rust modules use the
same field names, so a test can load them by name. All maths runs in float32, modules in
training mode (BatchNorm normalises with the batch statistics).
"""

import json
import math
import pathlib
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240921
BATCH = 6
FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-losses/tests/fixtures"


def tensor(t):
    """A tensor as {"shape", "data"} with exact float (or int) values."""
    t = t.detach().cpu()
    if t.dtype.is_floating_point:
        data = [float(v) for v in t.flatten().tolist()]
    else:
        data = [int(v) for v in t.flatten().tolist()]
    return {"shape": list(t.shape), "data": data}


def state(module):
    """The module's state dict (parameters and buffers), without BatchNorm's batch counter."""
    return {k: tensor(v) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


def randomize_batchnorms(module):
    """Moves every BatchNorm's affine parameters off their (1, 0) initialisation."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.2 * torch.randn_like(m.weight))
                m.bias.copy_(0.1 * torch.randn_like(m.bias))


def write(name, fixture):
    fixture = {"generator": "tools/reference/loss_learnable.py", "torch": torch.__version__, "seed": SEED, **fixture}
    out = FIXTURES / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(fixture, indent=1)
    # One line per list of numbers keeps the files small and their diffs readable.
    text = re.sub(r"\[\s*([-+0-9.eE,\s]*?)\s*\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    out.write_text(text + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


# --------------------------------------------------------------------------------------------
# FitNets: loss = MSE(r(F_s), F_t), mean over all elements.
#
# Regressor r (RepDistiller's ConvReg, generalised to any whole factor f = H_s / H_t per axis):
# conv with kernel 2f - 1, stride f, padding f - 1 (a 1x1 conv when the sizes match, RepDistiller's
# 3x3 / stride 2 / padding 1 conv when the student map is twice as large), with bias, then
# BatchNorm, then a ReLU when `relu` (RepDistiller's default use_relu=True: the hint layer's output
# is post-ReLU, and the paper asks r to end with the hint layer's non-linearity). Vectors [D]: a
# Linear, then the optional ReLU.
# --------------------------------------------------------------------------------------------


class FitNetsRegressor(nn.Module):
    def __init__(self, s_shape, t_shape, relu):
        super().__init__()
        self.relu = relu
        if len(s_shape) == 1:
            self.linear = nn.Linear(s_shape[0], t_shape[0])
        else:
            fh, fw = s_shape[1] // t_shape[1], s_shape[2] // t_shape[2]
            self.conv = nn.Conv2d(
                s_shape[0], t_shape[0], (2 * fh - 1, 2 * fw - 1), stride=(fh, fw), padding=(fh - 1, fw - 1)
            )
            self.bn = nn.BatchNorm2d(t_shape[0])

    def forward(self, x):
        y = self.linear(x) if hasattr(self, "linear") else self.bn(self.conv(x))
        return F.relu(y) if self.relu else y


def fitnets():
    torch.manual_seed(SEED)
    specs = [
        ("same_size", [4, 4, 4], [8, 4, 4], True),
        ("strided", [4, 8, 8], [8, 4, 4], False),
        ("vector", [10], [10], True),
    ]
    cases = []
    for name, s_shape, t_shape, relu in specs:
        regressor = FitNetsRegressor(s_shape, t_shape, relu)
        randomize_batchnorms(regressor)
        regressor.train()
        student = torch.randn(BATCH, *s_shape)
        teacher = torch.randn(BATCH, *t_shape)
        if relu:
            teacher = teacher.relu()
        weights = state(regressor)
        s = student.clone().requires_grad_(True)
        loss = F.mse_loss(regressor(s), teacher.detach())
        loss.backward()
        cases.append(
            {
                "name": name,
                "student_shape": s_shape,
                "teacher_shape": t_shape,
                "relu": relu,
                "student": tensor(student),
                "teacher": tensor(teacher),
                "weights": weights,
                "loss": loss.item(),
                "grad": tensor(s.grad),
            }
        )
    write("fitnets", {"cases": cases})


# --------------------------------------------------------------------------------------------
# VID: a regressor mu = conv1x1 -> ReLU -> conv1x1 -> ReLU -> conv1x1 (no biases; RepDistiller's
# VIDLoss(s, t, t) uses the teacher's channel count as the middle width), a per-channel variance
# var = softplus(alpha) + eps with alpha initialised to softplus^-1(init_pred_var - eps)
# (init_pred_var = 5, eps = 1e-5), and
#     loss = 0.5 * mean over (batch, channel, y, x) of [ log var_c + (t - mu)^2 / var_c ].
# When the spatial sizes differ, the larger map is adaptive-average-pooled to the smaller size
# (per axis, min(H_s, H_t) x min(W_s, W_t)), as in RepDistiller.
# --------------------------------------------------------------------------------------------


class Vid(nn.Module):
    def __init__(self, c_s, c_mid, c_t, init_pred_var=5.0, eps=1e-5):
        super().__init__()
        self.conv1 = nn.Conv2d(c_s, c_mid, 1, bias=False)
        self.conv2 = nn.Conv2d(c_mid, c_mid, 1, bias=False)
        self.conv3 = nn.Conv2d(c_mid, c_t, 1, bias=False)
        self.log_scale = nn.Parameter(math.log(math.expm1(init_pred_var - eps)) * torch.ones(c_t))
        self.eps = eps

    def forward(self, s, t):
        t = t.detach()
        h, w = min(s.shape[2], t.shape[2]), min(s.shape[3], t.shape[3])
        if tuple(s.shape[2:]) != (h, w):
            s = F.adaptive_avg_pool2d(s, (h, w))
        if tuple(t.shape[2:]) != (h, w):
            t = F.adaptive_avg_pool2d(t, (h, w))
        mu = self.conv3(F.relu(self.conv2(F.relu(self.conv1(s)))))
        var = (torch.log(1.0 + torch.exp(self.log_scale)) + self.eps).view(1, -1, 1, 1)
        return 0.5 * torch.mean(torch.log(var) + (mu - t) ** 2 / var)


def vid():
    torch.manual_seed(SEED + 1)
    specs = [
        ("same_size", [4, 4, 4], [8, 4, 4], None, False),
        ("student_larger", [4, 8, 8], [8, 4, 4], None, True),
        ("teacher_larger", [8, 4, 4], [4, 8, 8], 6, True),
    ]
    cases = []
    for name, s_shape, t_shape, mid, perturb in specs:
        module = Vid(s_shape[0], mid if mid is not None else t_shape[0], t_shape[0])
        if perturb:
            with torch.no_grad():
                module.log_scale.add_(0.5 * torch.randn_like(module.log_scale))
        student = torch.randn(BATCH, *s_shape)
        teacher = torch.randn(BATCH, *t_shape)
        weights = state(module)
        s = student.clone().requires_grad_(True)
        loss = module(s, teacher)
        loss.backward()
        cases.append(
            {
                "name": name,
                "mid_channels": mid,
                "student": tensor(student),
                "teacher": tensor(teacher),
                "weights": weights,
                "loss": loss.item(),
                "grad": tensor(s.grad),
                "log_scale_grad": tensor(module.log_scale.grad),
            }
        )
    write("vid", {"init_pred_var": 5.0, "eps": 1e-5, "cases": cases})


# --------------------------------------------------------------------------------------------
# CRD, following RepDistiller's CRDLoss / ContrastMemory / ContrastLoss:
#   v_s = normalize(W_s f_s + b_s), v_t = normalize(W_t f_t + b_t)     (128-d, L2 norm, no eps)
#   row b of idx = [positive index, K negative indices]
#   out_s[b, j] = exp(<teacher_memory[idx[b, j]], v_s[b]> / T)          (student vs teacher bank)
#   out_t[b, j] = exp(<student_memory[idx[b, j]], v_t[b]> / T)          (teacher vs student bank)
#   Z_s, Z_t: set once, on the first batch, to mean(out) * N, then kept
#   P = out / Z;  with m = K, Pn = 1 / N, eps = 1e-7:
#   nce(P) = -( sum_b log(P[b,0] / (P[b,0] + m Pn + eps))
#             + sum_{b, j>0} log(m Pn / (P[b,j] + m Pn + eps)) ) / B
#   loss = nce(P_s) + nce(P_t)
#   then, without gradient, memory[idx_pos] = normalize(m_mem * memory[idx_pos] + (1 - m_mem) * v)
#   for each side (student memory with v_s, teacher memory with v_t), m_mem = 0.5.
# Memories start uniform in [-stdv, stdv], stdv = 1 / sqrt(feat_dim / 3).
#
# Queue variant (this project's bounded-memory option, MoCo-style): the memories are FIFO queues of
# the last Q embeddings of each side; the positive of v_s[b] is v_t[b] (detached) and of v_t[b]
# is v_s[b] (detached); the negatives are the whole other-side queue; N = Q in Pn and Z; after
# the loss, each side's batch embeddings (detached) are put at the front of its queue and the
# oldest rows drop off the end.
# --------------------------------------------------------------------------------------------

NCE_EPS = 1e-7


def l2norm(x):
    return x / x.pow(2).sum(1, keepdim=True).pow(0.5)


def nce(p, n_noise):
    batch, k1 = p.shape
    m_pn = (k1 - 1) / float(n_noise)
    log_d1 = torch.log(p[:, 0] / (p[:, 0] + m_pn + NCE_EPS))
    log_d0 = torch.log(m_pn / (p[:, 1:] + m_pn + NCE_EPS))
    return -(log_d1.sum() + log_d0.sum()) / batch


class Crd(nn.Module):
    def __init__(self, d_s, d_t, feat_dim, rows, nce_t, nce_m, queue):
        super().__init__()
        self.embed_s = nn.Linear(d_s, feat_dim)
        self.embed_t = nn.Linear(d_t, feat_dim)
        stdv = 1.0 / math.sqrt(feat_dim / 3)
        self.register_buffer("student_memory", torch.rand(rows, feat_dim) * 2 * stdv - stdv)
        self.register_buffer("teacher_memory", torch.rand(rows, feat_dim) * 2 * stdv - stdv)
        self.register_buffer("z", torch.tensor([-1.0, -1.0]))
        self.nce_t, self.nce_m, self.queue = nce_t, nce_m, queue

    def forward(self, f_s, f_t, idx=None, neg=None):
        v_s = l2norm(self.embed_s(f_s))
        v_t = l2norm(self.embed_t(f_t.detach()))
        batch, dim = v_s.shape
        n_noise = self.student_memory.shape[0]
        if self.queue:
            # Clones: the queues are updated in place below, after autograd has saved them.
            queue_t, queue_s = self.teacher_memory.clone(), self.student_memory.clone()
            logit_s = torch.cat([(v_s * v_t.detach()).sum(1, keepdim=True), v_s @ queue_t.t()], 1)
            logit_t = torch.cat([(v_t * v_s.detach()).sum(1, keepdim=True), v_t @ queue_s.t()], 1)
        else:
            rows = torch.cat([idx.view(-1, 1), neg], 1)
            k1 = rows.shape[1]
            w_t = torch.index_select(self.teacher_memory, 0, rows.view(-1)).detach().view(batch, k1, dim)
            w_s = torch.index_select(self.student_memory, 0, rows.view(-1)).detach().view(batch, k1, dim)
            logit_s = torch.bmm(w_t, v_s.view(batch, dim, 1)).squeeze(2)
            logit_t = torch.bmm(w_s, v_t.view(batch, dim, 1)).squeeze(2)
        out_s = torch.exp(logit_s / self.nce_t)
        out_t = torch.exp(logit_t / self.nce_t)
        with torch.no_grad():
            if self.z[0] < 0:
                self.z[0] = out_s.mean() * n_noise
            if self.z[1] < 0:
                self.z[1] = out_t.mean() * n_noise
        loss = nce(out_s / self.z[0].item(), n_noise) + nce(out_t / self.z[1].item(), n_noise)
        with torch.no_grad():
            if self.queue:
                keep = min(batch, n_noise)
                self.student_memory.copy_(torch.cat([v_s[batch - keep :], self.student_memory[: n_noise - keep]]))
                self.teacher_memory.copy_(torch.cat([v_t[batch - keep :], self.teacher_memory[: n_noise - keep]]))
            else:
                for memory, v in ((self.student_memory, v_s), (self.teacher_memory, v_t)):
                    pos = torch.index_select(memory, 0, idx) * self.nce_m + v * (1 - self.nce_m)
                    memory.index_copy_(0, idx, l2norm(pos))
        return loss


def crd():
    torch.manual_seed(SEED + 2)
    d_s, d_t, feat_dim, n_data, nce_k, queue_size = 10, 12, 16, 24, 5, 8
    nce_t, nce_m = 0.07, 0.5
    modes = []
    for memory, rows in (("bank", n_data), ("queue", queue_size)):
        module = Crd(d_s, d_t, feat_dim, rows, nce_t, nce_m, memory == "queue")
        weights = state(module)
        steps = []
        for step in range(2):
            student = torch.randn(BATCH, d_s)
            teacher = torch.randn(BATCH, d_t)
            idx = torch.randperm(n_data)[:BATCH]
            neg = torch.randint(0, n_data, (BATCH, nce_k))
            s = student.clone().requires_grad_(True)
            loss = module(s, teacher, idx, neg)
            loss.backward()
            steps.append(
                {
                    "student": tensor(student),
                    "teacher": tensor(teacher),
                    "indices": tensor(idx),
                    "negatives": tensor(neg),
                    "loss": loss.item(),
                    "grad": tensor(s.grad),
                    "z": tensor(module.z),
                    "student_memory": tensor(module.student_memory),
                    "teacher_memory": tensor(module.teacher_memory),
                }
            )
            module.zero_grad()
        modes.append({"memory": memory, "weights": weights, "steps": steps})
    write(
        "crd",
        {
            "feat_dim": feat_dim,
            "n_data": n_data,
            "nce_k": nce_k,
            "nce_t": nce_t,
            "nce_m": nce_m,
            "queue_size": queue_size,
            "student_dim": d_s,
            "teacher_dim": d_t,
            "modes": modes,
        },
    )


# --------------------------------------------------------------------------------------------
# ReviewKD (dvlab-research/ReviewKD, CIFAR-100/model/reviewkd.py conventions):
# one ABF per stage; the deepest has no fusion. Processing runs deep -> shallow:
#   x = BN(conv1x1(F_s[i]))                                   (in -> mid channels, no bias)
#   if not deepest: r = nearest-resize(residual, F_s[i] size); a = sigmoid(conv1x1(cat[x, r]))
#                   x = x * a[:, 0] + r * a[:, 1]                (att_conv has a bias, 2 outputs)
#   if x's size != F_t[i]'s size: x = nearest-resize(x, F_t[i] size)
#   out[i] = BN(conv3x3(x)) (mid -> teacher channels, padding 1, no bias);  residual = x
# loss = sum_i hcl(out[i], F_t[i]); hcl = [MSE + sum over l in (4, 2, 1), l < H, of
#   w_l * MSE(adaptive_avg_pool(l)) ] / (1 + sum w_l), with w halving from 1/2 over the levels kept.
# mid_channel defaults to min(512, channels of the deepest student map).
# --------------------------------------------------------------------------------------------


class Abf(nn.Module):
    def __init__(self, c_in, c_mid, c_out, fuse):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_mid)
        self.conv2 = nn.Conv2d(c_mid, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.att_conv = nn.Conv2d(2 * c_mid, 2, 1) if fuse else None
        nn.init.kaiming_uniform_(self.conv1.weight, a=1)
        nn.init.kaiming_uniform_(self.conv2.weight, a=1)

    def forward(self, x, residual, out_hw):
        h, w = x.shape[2:]
        x = self.bn1(self.conv1(x))
        if self.att_conv is not None:
            residual = F.interpolate(residual, (h, w), mode="nearest")
            a = torch.sigmoid(self.att_conv(torch.cat([x, residual], 1)))
            x = x * a[:, 0:1] + residual * a[:, 1:2]
        if tuple(x.shape[2:]) != tuple(out_hw):
            x = F.interpolate(x, tuple(out_hw), mode="nearest")
        return self.bn2(self.conv2(x)), x


class ReviewKd(nn.Module):
    def __init__(self, s_channels, t_channels, mid):
        super().__init__()
        n = len(s_channels)
        self.abfs = nn.ModuleList(Abf(s_channels[i], mid, t_channels[i], i < n - 1) for i in range(n))

    def forward(self, fs, ft):
        ft = [t.detach() for t in ft]
        outs = [None] * len(fs)
        residual = None
        for i in reversed(range(len(fs))):
            outs[i], residual = self.abfs[i](fs[i], residual, ft[i].shape[2:])
        return sum(hcl(o, t) for o, t in zip(outs, ft))


def hcl(fs, ft):
    h = fs.shape[2]
    loss = F.mse_loss(fs, ft)
    weight, total = 1.0, 1.0
    for level in (4, 2, 1):
        if level >= h:
            continue
        weight /= 2.0
        loss = loss + F.mse_loss(F.adaptive_avg_pool2d(fs, level), F.adaptive_avg_pool2d(ft, level)) * weight
        total += weight
    return loss / total


def review_kd():
    torch.manual_seed(SEED + 3)
    specs = [
        # Same sizes per stage: only the review path resizes (deep residual -> shallower stage).
        ("same_sizes", [[4, 8, 8], [8, 4, 4], [8, 2, 2]], [[8, 8, 8], [8, 4, 4], [16, 2, 2]], None),
        # Teacher maps twice the student's at two stages: the fused map is resized to them.
        ("teacher_larger", [[4, 4, 4], [8, 2, 2]], [[8, 8, 8], [8, 4, 4]], 6),
    ]
    cases = []
    for name, s_shapes, t_shapes, mid in specs:
        mid_used = mid if mid is not None else min(512, s_shapes[-1][0])
        module = ReviewKd([s[0] for s in s_shapes], [t[0] for t in t_shapes], mid_used)
        randomize_batchnorms(module)
        module.train()
        students = [torch.randn(BATCH, *s) for s in s_shapes]
        teachers = [torch.randn(BATCH, *t) for t in t_shapes]
        weights = state(module)
        tracked = [s.clone().requires_grad_(True) for s in students]
        loss = module(tracked, teachers)
        loss.backward()
        cases.append(
            {
                "name": name,
                "mid_channel": mid,
                "students": [tensor(s) for s in students],
                "teachers": [tensor(t) for t in teachers],
                "weights": weights,
                "loss": loss.item(),
                "grads": [tensor(s.grad) for s in tracked],
            }
        )
    write("review_kd", {"cases": cases})


def main():
    fitnets()
    vid()
    crd()
    review_kd()


if __name__ == "__main__":
    main()
