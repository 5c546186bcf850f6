#!/usr/bin/env python3
"""PyTorch eager reference throughput on the same GPU, for quantscope's
GPU figures: timm models in FP32 (TF32 off), TF32 and FP16 (model.half()),
random weights, inputs already on the device, CUDA-synchronised timing.

    scripts/torch-reference.py --models vit_base_patch16_224 --batch 1,32 > torch.json

Prints one JSON object per line: model, batch, mode, samples_per_s, and
peak_mib (torch.cuda.max_memory_allocated over the measurement).
Exits 0 without output when PyTorch, timm or CUDA is missing.
"""
import argparse
import json
import sys
import time


def measure(model, x, seconds):
    import torch
    with torch.inference_mode():
        for _ in range(10):
            model(x)
        torch.cuda.synchronize()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(x)
            n += 1
        torch.cuda.synchronize()
        return n * x.shape[0] / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="vit_base_patch16_224")
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--modes", default="fp32,tf32,fp16")
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    try:
        import torch
        import timm
    except ImportError as e:
        print(f"torch-reference: {e}", file=sys.stderr)
        return
    if not torch.cuda.is_available():
        print("torch-reference: no CUDA device", file=sys.stderr)
        return
    dev = torch.device("cuda")
    for name in a.models.split(","):
        base = timm.create_model(name, pretrained=False).eval().to(dev)
        size = base.default_cfg.get("input_size", (3, 224, 224))
        for mode in a.modes.split(","):
            torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
            torch.backends.cudnn.allow_tf32 = mode == "tf32"
            model = base.half() if mode == "fp16" else base.float()
            for b in (int(s) for s in a.batch.split(",")):
                x = torch.randn(b, *size, device=dev)
                if mode == "fp16":
                    x = x.half()
                torch.cuda.reset_peak_memory_stats(dev)
                sps = measure(model, x, a.seconds)
                peak = torch.cuda.max_memory_allocated(dev) / 2**20
                print(json.dumps({"model": name, "batch": b, "mode": mode, "samples_per_s": round(sps, 1),
                                  "peak_mib": round(peak, 1), "device": torch.cuda.get_device_name(0),
                                  "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
