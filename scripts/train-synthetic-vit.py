#!/usr/bin/env python3
"""Train a small timm-structured ViT on a synthetic image task and export it.

No pretrained weights can be fetched on an offline machine, and random
weights make top-1 agreement meaningless (their logits are nearly tied).
This trains the VisionTransformer of scripts/export-timm-vit.py on a
procedural 10-class task (oriented sinusoidal gratings of class-specific
frequency and orientation, random phase, contrast, colour and noise), so
its logits are decisive, then exports it with torch.onnx.export and writes
held-out images of the task as PNG files for `quantscope quantize --check-dir`.

    scripts/train-synthetic-vit.py --out DIR [--steps 300] [--dim 192 --depth 6]
    scripts/train-synthetic-vit.py --out models/testdata/trained --steps 200 --dim 96 --depth 4 --images 64

Writes DIR/vit-synthetic.onnx, DIR/images/*.png and DIR/train.json (accuracy).
Needs PyTorch (Debian: python3-torch), Pillow (python3-pil) and, to declare
the model's mean/std in its metadata, onnx (python3-onnx); Debian's
PyTorch uses the reference BLAS on one thread unless an optimized BLAS such as
libopenblas0-pthread is installed (about 30x faster here).
"""
import argparse
import importlib.util
import json
import math
import os

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("export_timm_vit", os.path.join(here, "export-timm-vit.py"))
export = importlib.util.module_from_spec(spec)
spec.loader.exec_module(export)

CLASSES = 10
IMG = 32
MEAN = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)
STD = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)


def batch(n, gen):
    """n images in [0, 1] and their labels."""
    y = torch.randint(0, CLASSES, (n,), generator=gen)
    angle = (y % 5).float() * math.pi / 5 + 0.15 * torch.randn(n, generator=gen)
    freq = torch.where(y < 5, torch.tensor(0.35), torch.tensor(0.9)) * (1 + 0.1 * torch.randn(n, generator=gen))
    phase = 2 * math.pi * torch.rand(n, generator=gen)
    coords = torch.arange(IMG).float() - IMG / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    u = xx[None] * torch.cos(angle)[:, None, None] + yy[None] * torch.sin(angle)[:, None, None]
    wave = torch.sin(freq[:, None, None] * u + phase[:, None, None])
    contrast = 0.25 + 0.25 * torch.rand(n, 1, 1, 1, generator=gen)
    colour = 0.3 + 0.7 * torch.rand(n, 3, 1, 1, generator=gen)
    x = 0.5 + contrast * colour * wave[:, None] + 0.08 * torch.randn(n, 3, IMG, IMG, generator=gen)
    return x.clamp(0, 1), y


def stamp_preprocess(path):
    """Declare the model's preprocessing as quantscope reads it (metadata
    quantscope.mean / quantscope.std / quantscope.crop_pct /
    quantscope.interpolation: the images are made at the input size, so no
    resize), when the onnx package is there."""
    try:
        import onnx
    except ImportError:
        print("onnx not installed: quantscope will assume ImageNet normalization; "
              "the images were normalized with mean 0.5, std 0.5")
        return
    m = onnx.load(path)
    for key, value in (("quantscope.mean", "0.5,0.5,0.5"), ("quantscope.std", "0.5,0.5,0.5"),
                       ("quantscope.crop_pct", "1.0"), ("quantscope.interpolation", "bicubic")):
        p = m.metadata_props.add()
        p.key, p.value = key, value
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = export.VisionTransformer(img=IMG, patch=4, dim=a.dim, depth=a.depth, heads=3, classes=CLASSES)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=a.steps, pct_start=0.1)
    model.train()
    for step in range(a.steps):
        x, y = batch(128, gen)
        loss = F.cross_entropy(model((x - MEAN) / STD), y, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.3f}", flush=True)
    model.eval()
    test = torch.Generator().manual_seed(2)
    x, y = batch(a.images, test)
    with torch.no_grad():
        logits = model((x - MEAN) / STD)
    acc = (logits.argmax(1) == y).float().mean().item()
    top2 = logits.topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).median().item()
    print(f"held-out accuracy {acc:.3f}, median top-1 margin {margin:.2f}")
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    from PIL import Image
    for i in range(a.images):
        arr = (x[i].permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        Image.fromarray(arr).save(os.path.join(a.out, "images", f"{i:04d}-class{y[i].item()}.png"))
    torch.onnx.export(model, (x[:2] - MEAN) / STD, os.path.join(a.out, "vit-synthetic.onnx"), opset_version=17,
                      input_names=["pixel_values"], output_names=["logits"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
    stamp_preprocess(os.path.join(a.out, "vit-synthetic.onnx"))
    with open(os.path.join(a.out, "train.json"), "w") as f:
        json.dump({"steps": a.steps, "accuracy": acc, "median_margin": margin}, f)


if __name__ == "__main__":
    main()
