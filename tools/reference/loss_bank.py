"""Reference values for ten distillation losses of kd-losses (the "loss bank").

Writes crates/kd-losses/tests/fixtures/<method>.json for hinton_kd, dkd, dist,
logit_standardization, attention_transfer, similarity_preserving, rkd, pkt, nst and
correlation_congruence. `tools/reference/losses.py` imports this module and runs `main()`, so

    ~/.kd-refenv/bin/python tools/reference/losses.py

regenerates every kd-losses fixture (PyTorch 2.9.0, float32).

Each loss below is written from its paper; where a paper leaves a convention open (an epsilon,
a reduction, biased or unbiased statistics) the authors' released code settled it, and the
comment next to the function says which. Every fixture holds the inputs (shape + flat
row-major data), the hyper-parameters of each case, the loss and the gradient of the loss with
respect to the student input, from autograd. The teacher input is always a constant.
"""

import json
import math
import pathlib
import re

import torch
import torch.nn.functional as F

SEED = 20241105
BATCH = 6
CLASSES = 7
FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-losses/tests/fixtures"


def array(t):
    """A float32 tensor as {"shape", "data"} with exact float32 values, row-major."""
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.flatten().tolist()]}


# --------------------------------------------------------------------------------------------
# The losses. `s` is the student input (tracked), `t` the teacher input (constant).
# --------------------------------------------------------------------------------------------


def kl_batchmean(log_p_t, log_p_s):
    """KL(p_t || p_s) summed over the last dim and averaged over the batch."""
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).mean()


def hinton_kd(s, t, temperature):
    """Hinton et al. 2015: T^2 * KL(softmax(t / T) || softmax(s / T)), batch mean."""
    T = temperature
    return T * T * kl_batchmean(F.log_softmax(t / T, dim=1), F.log_softmax(s / T, dim=1))


def dkd(s, t, target, alpha, beta, temperature, warmup_factor):
    """Zhao et al. 2022, Decoupled KD: alpha * TCKD + beta * NCKD, both times T^2.

    b = [p_target, 1 - p_target] is the binary target/non-target distribution and p_hat the
    distribution over the non-target classes alone (the full softmax renormalised without the
    target class). TCKD = KL(b_t || b_s), NCKD = KL(p_hat_t || p_hat_s), batch means. As in the
    authors' code, 1 - p_target is the sum of the non-target probabilities.
    """
    T = temperature
    p_s = F.softmax(s / T, dim=1)
    p_t = F.softmax(t / T, dim=1)
    gt = F.one_hot(target, s.shape[1]).bool()
    b, k = s.shape

    def split(p):
        target_p = p[gt].view(b, 1)
        rest = p[~gt].view(b, k - 1)
        binary = torch.cat([target_p, rest.sum(dim=1, keepdim=True)], dim=1)
        return binary, rest / rest.sum(dim=1, keepdim=True)

    b_s, hat_s = split(p_s)
    b_t, hat_t = split(p_t)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(dim=1).mean()
    nckd = (hat_t * (hat_t.log() - hat_s.log())).sum(dim=1).mean()
    return warmup_factor * T * T * (alpha * tckd + beta * nckd)


def pearson(a, b, eps=1e-8):
    """Row-wise Pearson correlation; eps is added to the product of norms (authors' code)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist(s, t, beta, gamma, tau):
    """Huang et al. 2022, DIST: tau^2 * (beta * inter + gamma * intra).

    inter = 1 - mean over samples of the Pearson correlation of the two class distributions,
    intra = 1 - mean over classes of the Pearson correlation across the batch.
    """
    y_s = F.softmax(s / tau, dim=1)
    y_t = F.softmax(t / tau, dim=1)
    inter = 1.0 - pearson(y_s, y_t).mean()
    intra = 1.0 - pearson(y_s.t(), y_t.t()).mean()
    return tau * tau * (beta * inter + gamma * intra)


def standardize(z):
    """Sun et al. 2024: (z - mean) / (std + 1e-7) per sample, std unbiased (torch.std)."""
    return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + 1e-7)


def logit_standardization(s, t, temperature):
    """Hinton KD on z-scored logits, with the base temperature T and the T^2 factor."""
    return hinton_kd(standardize(s), standardize(t), temperature)


def attention_map(x, p):
    """Zagoruyko & Komodakis 2017: sum_c |A_c|^p, flattened, L2-normalised (eps 1e-12)."""
    a = x.abs().pow(p).sum(dim=1).flatten(1)
    return a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)


def attention_transfer(s, t, p):
    """Mean over the batch and the H*W positions of the squared difference of the maps.

    This is the authors' `(at(x) - at(y)).pow(2).mean()`: (1 / (B*H*W)) * sum_b ||a_s - a_t||^2.
    """
    return (attention_map(s, p) - attention_map(t, p)).pow(2).mean()


def row_normalize(x):
    """x / max(||x||_2, 1e-12) along the last dim (torch.nn.functional.normalize's rule)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def similarity_preserving(s, t):
    """Tung & Mori 2019: ||G_s - G_t||_F^2 / B^2 with G = row_normalize(f f^T)."""
    b = s.shape[0]
    f_s = s.reshape(b, -1)
    f_t = t.reshape(b, -1)
    g_s = row_normalize(f_s @ f_s.t())
    g_t = row_normalize(f_t @ f_t.t())
    return (g_s - g_t).pow(2).sum() / (b * b)


def smooth_l1(x, y):
    """Huber loss with delta 1, mean over the elements."""
    d = (x - y).abs()
    return torch.where(d < 1.0, 0.5 * d * d, d - 0.5).mean()


def pair_distances(e):
    """Euclidean distances between rows, from ||a||^2 + ||b||^2 - 2 a.b clamped at 1e-12
    before the square root, with a zero diagonal (authors' code)."""
    sq = e.pow(2).sum(dim=1)
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (e @ e.t())).clamp_min(1e-12)
    d = d2.sqrt()
    return d * (1.0 - torch.eye(e.shape[0]))


def rkd(s, t, distance_weight, angle_weight):
    """Park et al. 2019: w_d * Huber(psi_D(s), psi_D(t)) + w_a * Huber(psi_A(s), psi_A(t)).

    psi_D: pairwise distances divided by their mean over the B*(B-1) distinct pairs.
    psi_A[i, j, k] = <e_ij, e_ik> with e_ij = (x_j - x_i) / ||x_j - x_i||, all B^3 triplets.
    """
    b = s.shape[0]
    e_s = s.reshape(b, -1)
    e_t = t.reshape(b, -1)
    pairs = b * (b - 1)
    d_s = pair_distances(e_s)
    d_t = pair_distances(e_t)
    d_s = d_s / (d_s.sum() / pairs)
    d_t = d_t / (d_t.sum() / pairs)
    distance = smooth_l1(d_s, d_t)

    def angles(e):
        diff = row_normalize(e.unsqueeze(0) - e.unsqueeze(1))  # diff[i, j] = e_j - e_i
        return diff @ diff.transpose(1, 2)

    angle = smooth_l1(angles(e_s), angles(e_t))
    return distance_weight * distance + angle_weight * angle


def pkt(s, t, eps):
    """Passalis & Tefas 2018: KL between cosine-similarity distributions (authors' code).

    Each row is divided by (its L2 norm + eps); K = (cos + 1) / 2; each row of K is divided by
    its sum; loss = mean over the B*B entries of P_t * log((P_t + eps) / (P_s + eps)).
    """
    b = s.shape[0]

    def probs(x):
        x = x.reshape(b, -1)
        x = x / (x.norm(dim=1, keepdim=True) + eps)
        k = (x @ x.t() + 1.0) / 2.0
        return k / k.sum(dim=1, keepdim=True)

    p_s = probs(s)
    p_t = probs(t)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


def nst(s, t, degree, offset):
    """Huang & Wang 2017: squared MMD with the kernel k(x, y) = (x.y + c)^d between the sets of
    channel activations (each channel's H*W vector L2-normalised), averaged over the batch:
    mean k(s, s') + mean k(t, t') - 2 mean k(s, t)."""
    f_s = row_normalize(s.flatten(2))
    f_t = row_normalize(t.flatten(2))

    def k(a, b):
        return (a @ b.transpose(1, 2) + offset).pow(degree).mean()

    return k(f_s, f_s) + k(f_t, f_t) - 2.0 * k(f_s, f_t)


def correlation_congruence(s, t, gamma, order):
    """Peng et al. 2019: C = sum_{p=0..P} exp(-2 gamma) (2 gamma)^p / p! (f_i . f_j)^p on
    L2-normalised embeddings (the P-order Taylor expansion of exp(-gamma ||f_i - f_j||^2));
    loss = ||C_s - C_t||_F^2 / B^2."""
    b = s.shape[0]

    def corr(x):
        x = row_normalize(x.reshape(b, -1))
        sim = x @ x.t()
        c = torch.zeros_like(sim)
        for p in range(order + 1):
            c = c + math.exp(-2.0 * gamma) * (2.0 * gamma) ** p / math.factorial(p) * sim.pow(p)
        return c

    return (corr(s) - corr(t)).pow(2).sum() / (b * b)


# --------------------------------------------------------------------------------------------
# Fixtures.
# --------------------------------------------------------------------------------------------


def run_case(fn, inputs, name, params, target=None, target_name=None):
    s = inputs[name]["student"].clone().requires_grad_(True)
    t = inputs[name]["teacher"]
    args = (s, t) if target is None else (s, t, target)
    loss = fn(*args, **params)
    loss.backward()
    return {
        "inputs": name,
        "targets": target_name,
        "params": params,
        "loss": loss.item(),
        "grad": array(s.grad),
    }


def write(method, inputs, cases, targets=None):
    """Writes tests/fixtures/<method>.json with the inputs its cases use."""
    used = {case["inputs"] for case in cases}
    fixture = {
        "generator": "tools/reference/loss_bank.py",
        "torch": torch.__version__,
        "seed": SEED,
        "inputs": {
            name: {"student": array(pair["student"]), "teacher": array(pair["teacher"])}
            for name, pair in inputs.items()
            if name in used
        },
        "targets": targets,
        "cases": cases,
    }
    text = json.dumps(fixture, indent=1)
    # One line per list of numbers keeps the files short and diffable.
    text = re.sub(r"\[[-0-9.e,\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), text)
    path = FIXTURES / f"{method}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(cases)} cases)")


def main():
    torch.manual_seed(SEED)
    logits = {
        "base": {
            "student": torch.randn(BATCH, CLASSES) * 3.0,
            "teacher": torch.randn(BATCH, CLASSES) * 3.0,
        },
        # Large logits: at T = 1 most probabilities underflow to zero in float32.
        "saturated": {
            "student": torch.randn(BATCH, CLASSES) * 40.0,
            "teacher": torch.randn(BATCH, CLASSES) * 40.0,
        },
    }
    hard = torch.randint(0, CLASSES, (BATCH,))
    soft = F.softmax(torch.randn(BATCH, CLASSES) * 2.0, dim=1)
    maps = {
        # Channels differ (4 vs 8), spatial sizes match.
        "maps_4_8": {"student": torch.randn(BATCH, 4, 5, 5), "teacher": torch.randn(BATCH, 8, 5, 5)},
        # Post-ReLU maps with equal channel counts.
        "maps_4_4": {
            "student": torch.randn(BATCH, 4, 5, 5).relu(),
            "teacher": torch.randn(BATCH, 4, 5, 5).relu(),
        },
    }
    embeddings = {
        # Student and teacher widths differ.
        "emb_10_12": {"student": torch.randn(BATCH, 10), "teacher": torch.randn(BATCH, 12) * 2.0},
        # Equal widths.
        "emb_10_10": {"student": torch.randn(BATCH, 10), "teacher": torch.randn(BATCH, 10)},
    }

    base = {"base": logits["base"]}
    write(
        "hinton_kd",
        logits,
        [run_case(hinton_kd, logits, "base", {"temperature": T}) for T in (1.0, 2.5, 4.0)]
        + [run_case(hinton_kd, logits, "saturated", {"temperature": T}) for T in (1.0, 4.0)],
    )

    # DKD reads soft targets through their argmax (`Targets::class_indices`).
    index_of = {"hard": hard, "soft": soft.argmax(dim=1)}
    dkd_cases = []
    for alpha, beta, T, kind, warmup in (
        (1.0, 8.0, 4.0, "hard", 1.0),
        (1.0, 8.0, 4.0, "soft", 1.0),
        (1.0, 2.0, 1.0, "hard", 1.0),
        (0.5, 6.0, 2.0, "soft", 0.25),
    ):
        params = {"alpha": alpha, "beta": beta, "temperature": T, "warmup_factor": warmup}
        dkd_cases.append(run_case(dkd, base, "base", params, index_of[kind], kind))
    write(
        "dkd",
        base,
        dkd_cases,
        targets={"hard": [int(v) for v in hard.tolist()], "soft": array(soft)},
    )

    write(
        "dist",
        logits,
        [
            run_case(dist, logits, "base", {"beta": b, "gamma": g, "tau": tau})
            for b, g, tau in ((1.0, 1.0, 1.0), (2.0, 2.0, 4.0), (1.0, 0.5, 2.0))
        ]
        + [run_case(dist, logits, "saturated", {"beta": 1.0, "gamma": 1.0, "tau": 1.0})],
    )

    write(
        "logit_standardization",
        logits,
        [run_case(logit_standardization, logits, "base", {"temperature": T}) for T in (1.0, 2.0, 4.0)]
        + [run_case(logit_standardization, logits, "saturated", {"temperature": 2.0})],
    )

    write(
        "attention_transfer",
        maps,
        [
            run_case(attention_transfer, maps, "maps_4_8", {"p": 2.0}),
            run_case(attention_transfer, maps, "maps_4_4", {"p": 2.0}),
            run_case(attention_transfer, maps, "maps_4_8", {"p": 4.0}),
        ],
    )

    features = {**maps, **embeddings}
    write(
        "similarity_preserving",
        features,
        [run_case(similarity_preserving, features, name, {}) for name in features],
    )

    write(
        "rkd",
        features,
        [
            run_case(rkd, features, "emb_10_12", {"distance_weight": 25.0, "angle_weight": 50.0}),
            run_case(rkd, features, "emb_10_12", {"distance_weight": 1.0, "angle_weight": 0.0}),
            run_case(rkd, features, "emb_10_12", {"distance_weight": 0.0, "angle_weight": 1.0}),
            run_case(rkd, features, "emb_10_10", {"distance_weight": 1.0, "angle_weight": 2.0}),
            run_case(rkd, features, "maps_4_8", {"distance_weight": 25.0, "angle_weight": 50.0}),
        ],
    )

    write(
        "pkt",
        features,
        [run_case(pkt, features, name, {"eps": 1e-7}) for name in ("emb_10_12", "emb_10_10", "maps_4_8")]
        + [run_case(pkt, features, "emb_10_12", {"eps": 1e-3})],
    )

    write(
        "nst",
        maps,
        [
            run_case(nst, maps, "maps_4_8", {"degree": 2, "offset": 0.0}),
            run_case(nst, maps, "maps_4_4", {"degree": 2, "offset": 0.0}),
            run_case(nst, maps, "maps_4_8", {"degree": 3, "offset": 1.0}),
            run_case(nst, maps, "maps_4_4", {"degree": 1, "offset": 0.0}),
        ],
    )

    write(
        "correlation_congruence",
        embeddings,
        [
            run_case(correlation_congruence, embeddings, "emb_10_10", {"gamma": g, "order": p})
            for g, p in ((0.4, 2), (0.4, 1), (1.0, 4))
        ],
    )


if __name__ == "__main__":
    main()
