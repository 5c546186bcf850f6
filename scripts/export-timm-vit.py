#!/usr/bin/env python3
"""Export a timm-architecture VisionTransformer with torch.onnx.export.

The module below follows the structure of timm's VisionTransformer
(PatchEmbed Conv + flatten/transpose, class token expand + cat, position
embedding, pre-norm blocks with a packed qkv Linear reshaped to
(B, N, 3, heads, head_dim) and permuted, q*scale @ k^T, softmax, @ v,
exact GELU, final norm, class-token head) and timm's initialisation
(truncated normal std 0.02 for Linear weights and embeddings, zero biases,
LayerNorm 1/0), so that the exported graph has what real exports have:
Shape/Gather/Concat-computed reshape targets, Split or Gather for q/k/v,
Erf-GELU, MatMul+Add linears and a Gemm head.

It needs only PyTorch (Debian: python3-torch), not timm.

    scripts/export-timm-vit.py --preset fixture out.onnx   # the test fixture
    scripts/export-timm-vit.py --preset tiny out.onnx      # ViT-Ti/16, 224 px
"""
import argparse

import torch
from torch import nn
import torch.nn.functional as F

PRESETS = {
    # the small graph models/optimize's tests carry
    "fixture": dict(img=32, patch=8, dim=32, depth=2, heads=2, classes=10),
    # timm vit_tiny_patch16_224 / deit_tiny_patch16_224
    "tiny": dict(img=224, patch=16, dim=192, depth=12, heads=3, classes=1000),
    # timm vit_small_patch16_224
    "small": dict(img=224, patch=16, dim=384, depth=12, heads=6, classes=1000),
    # timm vit_base_patch16_224
    "base": dict(img=224, patch=16, dim=768, depth=12, heads=12, classes=1000),
}


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = q * self.scale
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x = attn @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, img, patch, dim, depth, heads, classes):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        tokens = (img // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.blocks(x + self.pos_embed)
        return self.head(self.norm(x)[:, 0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="fixture")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("out")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    p = PRESETS[a.preset]
    model = VisionTransformer(**p).eval()
    x = torch.randn(2, 3, p["img"], p["img"])
    torch.onnx.export(
        model, x, a.out, opset_version=a.opset,
        input_names=["pixel_values"], output_names=["logits"],
        dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
    )


if __name__ == "__main__":
    main()
