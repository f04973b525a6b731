"""Reference fixtures for kd-models' BEiT: tiny timm `Beit` models with random weights.

Writes, for each configuration NAME below, into crates/kd-models/tests/fixtures/:

    beit_NAME.safetensors     the state dict with timm's exact keys (float32), plus the
                              `relative_position_index` buffers (int64) that older timm
                              versions and the official BEiT checkpoints store
    beit_NAME_io.safetensors  `input` [2, 3, 32, 32], `logits` [2, 10] and one
                              `tap.<name>` per feature tap (patch_embed, blocks.N, pre_logits)
    beit_NAME.json            the kd-models `BeitConfig` of the model and the tap names

read by crates/kd-models/tests/beit_parity.rs. Run from anywhere with torch 2.9.0 and timm:

    ~/.kd-refenv/bin/python tools/reference/export_beit.py              # tiny fixtures
    ~/.kd-refenv/bin/python tools/reference/export_beit.py --full DIR   # full-size model

`--full DIR` writes, for `cargo xtask parity`, timm's `beit_base_patch16_224` architecture
(`timm.create_model(..., pretrained=False)`, 1000 classes, eval mode) with weights drawn by the
rules below (seed 100) into DIR, not committed:

    beit_base_patch16_224.safetensors     timm keys, plus the relative_position_index buffers
    beit_base_patch16_224.io.safetensors  `input` [2, 3, 224, 224] and `logits` [2, 1000],
                                          with metadata `params` (parameter count) and
                                          `torch_seconds` (one float32 eval forward pass)

Weights are drawn from a seeded generator (seed 0 + configuration index) in float32, so that
every tensor, the relative-position tables and the layer scales included, is non-trivial:

    relative_position_bias_table   0.5 * N(0, 1)
    gamma_1, gamma_2               U(0.3, 1.2)
    cls_token, pos_embed           0.5 * N(0, 1)
    1-D *.weight (layer norms)     1 + 0.2 * N(0, 1)
    1-D biases, q_bias, v_bias     0.1 * N(0, 1)
    >= 2-D weights                 N(0, 1) / sqrt(fan_in)

The input is N(0, 1). The model runs in eval mode in float64 on those float32 values (so the
references carry no float32 rounding), and the outputs are stored as float32.
"""

import argparse
import json
import pathlib
import time

import safetensors.torch
import timm
import torch
from timm.models.beit import Beit

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/kd-models/tests/fixtures"

TINY = dict(img_size=32, patch_size=8, in_chans=3, num_classes=10, embed_dim=48, depth=2,
            num_heads=4, mlp_ratio=2.0)

CONFIGS = {
    # per-block relative-position bias, layer scale, average pooling with fc_norm
    "rel_ls_avg": dict(qkv_bias=True, use_abs_pos_emb=False, use_rel_pos_bias=True,
                       use_shared_rel_pos_bias=False, init_values=0.1, global_pool="avg"),
    # absolute position embedding, no layer scale, no q/v bias, class-token pooling
    "abs_token": dict(qkv_bias=False, use_abs_pos_emb=True, use_rel_pos_bias=False,
                      use_shared_rel_pos_bias=False, init_values=None, global_pool="token"),
    # one relative-position bias shared by all blocks
    "shared": dict(qkv_bias=True, use_abs_pos_emb=False, use_rel_pos_bias=False,
                   use_shared_rel_pos_bias=True, init_values=0.1, global_pool="avg"),
}


def random_value(key, shape, gen):
    """A float32 tensor for state-dict entry `key` of `shape`, by the rules of the docstring."""
    normal = lambda: torch.randn(shape, generator=gen, dtype=torch.float32)
    if key.endswith("relative_position_bias_table") or key in ("cls_token", "pos_embed"):
        return 0.5 * normal()
    if key.endswith("gamma_1") or key.endswith("gamma_2"):
        return 0.3 + 0.9 * torch.rand(shape, generator=gen, dtype=torch.float32)
    if len(shape) == 1 and key.endswith("weight"):
        return 1.0 + 0.2 * normal()
    if len(shape) == 1:
        return 0.1 * normal()
    fan_in = int(torch.tensor(shape[1:]).prod())
    return normal() / fan_in ** 0.5


def kd_config(args):
    """The kd-models BeitConfig (serde field names) of timm arguments `args`."""
    return dict(
        image_size=args["img_size"], patch_size=args["patch_size"], in_chans=args["in_chans"],
        num_classes=args["num_classes"], embed_dim=args["embed_dim"], depth=args["depth"],
        num_heads=args["num_heads"], mlp_ratio=args["mlp_ratio"], qkv_bias=args["qkv_bias"],
        use_abs_pos_emb=args["use_abs_pos_emb"], use_rel_pos_bias=args["use_rel_pos_bias"],
        use_shared_rel_pos_bias=args["use_shared_rel_pos_bias"],
        init_values=args["init_values"], drop_rate=0.0, pos_drop_rate=0.0, proj_drop_rate=0.0,
        attn_drop_rate=0.0, drop_path_rate=0.0, global_pool=args["global_pool"],
        layer_norm_eps=1e-6,
    )


def randomise(model, gen):
    """Draws every state-dict entry of `model` in place; returns the state dict to save."""
    state = {}
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            value = random_value(key, tuple(tensor.shape), gen)
            tensor.copy_(value)
            state[key] = value.contiguous()
    # timm 1.0 keeps the index buffers out of its state dict; checkpoints written by older
    # versions (and the official BEiT ones) hold them, so the fixture does too.
    for key, buffer in model.named_buffers():
        if key.endswith("relative_position_index"):
            state[key] = buffer.to(torch.int64).contiguous()
    return state


def export(index, name, variant):
    args = dict(TINY, **variant)
    model = Beit(**args).eval()
    gen = torch.Generator().manual_seed(index)
    state = randomise(model, gen)
    safetensors.torch.save_file(state, OUT / f"beit_{name}.safetensors")

    x = torch.randn((2, 3, 32, 32), generator=gen, dtype=torch.float32)
    model = model.double()
    taps = {}
    hooks = [model.patch_embed.register_forward_hook(
        lambda m, i, o: taps.__setitem__("patch_embed", o))]
    for b, block in enumerate(model.blocks):
        hooks.append(block.register_forward_hook(
            lambda m, i, o, b=b: taps.__setitem__(f"blocks.{b}", o)))
    with torch.no_grad():
        features = model.forward_features(x.double())
        taps["pre_logits"] = model.forward_head(features, pre_logits=True)
        logits = model.forward_head(features)
        assert torch.allclose(logits, model(x.double()))
    for hook in hooks:
        hook.remove()

    io = {"input": x, "logits": logits.float()}
    io.update({f"tap.{k}": v.float().contiguous() for k, v in taps.items()})
    safetensors.torch.save_file(io, OUT / f"beit_{name}_io.safetensors")
    meta = {
        "generator": "tools/reference/export_beit.py",
        "torch": torch.__version__,
        "timm": timm.__version__,
        "config": kd_config(args),
        "taps": list(taps.keys()),
    }
    (OUT / f"beit_{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(name, {k: tuple(v.shape) for k, v in io.items()})


def export_full(out_dir):
    """timm's beit_base_patch16_224 with random weights, its input and float64 logits."""
    name = "beit_base_patch16_224"
    model = timm.create_model(name, pretrained=False).eval()
    gen = torch.Generator().manual_seed(100)
    state = randomise(model, gen)
    safetensors.torch.save_file(state, out_dir / f"{name}.safetensors")
    x = torch.randn((2, 3, 224, 224), generator=gen, dtype=torch.float32)
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits = model.double()(x.double()).float()
    params = sum(p.numel() for p in model.parameters())
    safetensors.torch.save_file(
        {"input": x, "logits": logits.contiguous()},
        out_dir / f"{name}.io.safetensors",
        metadata={"params": str(params), "torch_seconds": f"{seconds:.6f}"},
    )
    print(f"{name}: {params} parameters, logits[0][:3] = {logits[0][:3].tolist()}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", type=pathlib.Path, help="write the full-size model here instead")
    args = parser.parse_args()
    if args.full:
        torch.set_num_threads(2)
        args.full.mkdir(parents=True, exist_ok=True)
        export_full(args.full)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for index, (name, variant) in enumerate(CONFIGS.items()):
        export(index, name, variant)


if __name__ == "__main__":
    main()
