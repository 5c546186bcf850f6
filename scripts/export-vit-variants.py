#!/usr/bin/env python3
"""Export ViTs as other libraries structure them, with torch.onnx.export.

Users bring transformer exports from more than timm. This script builds,
in plain PyTorch (torchvision and transformers need not be installed), the
module structure each library uses and exports it, so quantscope's fusions
are tested and benchmarked on what those exporters write:

  torchvision   vit_b_16: EncoderBlock with nn.MultiheadAttention
                (batch_first, packed in_proj weight), conv_proj + reshape +
                permute, class token, ln, heads.head
  hf            transformers ViTSelfAttention: separate query/key/value
                Linears, transpose_for_scores (view + permute), scores
                divided by sqrt(head size), ViTSelfOutput/ViTIntermediate/
                ViTOutput, layernorm_before/after
  hf-split      the same with the scale split across q and k, computed from
                q's shape (what newer exporters write for
                scaled_dot_product_attention: q*sqrt(s) @ (k^T*sqrt(s)))
  encoder-pre   nn.TransformerEncoder of nn.TransformerEncoderLayer
                (batch_first, norm_first=True, activation gelu)
  encoder-post  the same with norm_first=False (post-norm, the default)

and near-miss variants, which must NOT fuse and must say why:

  hf-masked     hf with an attention mask computed from the input added to
                the scores (not a constant bias)
  hf-headscale  hf with a learned scale per head on the scores (as Swin V2's
                logit scale): not a scalar, so not the fused operator's scale
  torchvision-masked
                torchvision with a key padding mask computed from the input
                passed to nn.MultiheadAttention
  encoder-masked
                encoder-pre with src_key_padding_mask computed from the input

    /usr/bin/python3 scripts/export-vit-variants.py --arch hf --preset fixture out.onnx
    /usr/bin/python3 scripts/export-vit-variants.py --arch torchvision --preset base out.onnx

Presets: fixture (32 px, patch 8, width 32, depth 2, 2 heads: the test
fixtures under models/testdata/), base (ViT-B/16, 224 px: benchmarks,
~330 MB, not committed). Needs PyTorch (Debian: python3-torch). Use
Debian's interpreter (/usr/bin/python3) when another python3 comes first
on PATH.
"""
import argparse
import math

import torch
from torch import nn

PRESETS = {
    "fixture": dict(img=32, patch=8, dim=32, depth=2, heads=2, classes=10),
    "tiny": dict(img=224, patch=16, dim=192, depth=12, heads=3, classes=1000),
    "base": dict(img=224, patch=16, dim=768, depth=12, heads=12, classes=1000),
}


def init_weights(model):
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.normal_(m.bias, std=0.02)
        elif isinstance(m, nn.MultiheadAttention):
            nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
            nn.init.normal_(m.in_proj_bias, std=0.02)
        elif isinstance(m, nn.LayerNorm):
            nn.init.normal_(m.weight, mean=1.0, std=0.05)
            nn.init.normal_(m.bias, std=0.02)


# --- torchvision vit_b_16 -------------------------------------------------

class TVMLPBlock(nn.Sequential):
    def __init__(self, dim, hidden):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim), nn.Dropout(0.0))


class TVEncoderBlock(nn.Module):
    def __init__(self, heads, dim, hidden, mask=False):
        super().__init__()
        self.mask = mask
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = TVMLPBlock(dim, hidden)

    def forward(self, input):
        x = self.ln_1(input)
        pad = None
        if self.mask:
            # A key padding mask computed from the input.
            pad = input.abs().sum(-1) == 0
        x, _ = self.self_attention(x, x, x, key_padding_mask=pad, need_weights=False)
        x = self.dropout(x)
        x = x + input
        y = self.ln_2(x)
        y = self.mlp(y)
        return x + y


class TorchvisionViT(nn.Module):
    def __init__(self, img, patch, dim, depth, heads, classes, mask=False):
        super().__init__()
        self.patch, self.dim = patch, dim
        self.conv_proj = nn.Conv2d(3, dim, patch, stride=patch)
        seq = (img // patch) ** 2 + 1
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.empty(1, seq, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(*[TVEncoderBlock(heads, dim, 4 * dim, mask) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        n, _, h, w = x.shape
        x = self.conv_proj(x)
        x = x.reshape(n, self.dim, (h // self.patch) * (w // self.patch))
        x = x.permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        x = self.ln(self.layers(self.dropout(x + self.pos_embedding)))
        return self.head(x[:, 0])


# --- Hugging Face ViT -------------------------------------------------------

class HFSelfAttention(nn.Module):
    def __init__(self, dim, heads, split_scale=False, mask=False, head_scale=False):
        super().__init__()
        self.num_attention_heads = heads
        self.attention_head_size = dim // heads
        self.all_head_size = dim
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.split_scale = split_scale
        self.mask = mask
        self.head_scale = nn.Parameter(torch.rand(1, heads, 1, 1) + 0.5) if head_scale else None

    def transpose_for_scores(self, x):
        new_x_shape = x.size()[:-1] + (self.num_attention_heads, self.attention_head_size)
        return x.view(new_x_shape).permute(0, 2, 1, 3)

    def forward(self, hidden_states):
        key_layer = self.transpose_for_scores(self.key(hidden_states))
        value_layer = self.transpose_for_scores(self.value(hidden_states))
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        if self.split_scale:
            # The scale as newer exporters write scaled_dot_product_attention:
            # computed from q's last dimension, its square root applied to q
            # and to k^T.
            scale = 1.0 / torch.sqrt(torch.tensor(query_layer.size(-1), dtype=torch.float32))
            s = torch.sqrt(scale)
            scores = torch.matmul(query_layer * s, key_layer.transpose(-1, -2) * s)
        else:
            scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))
            scores = scores / math.sqrt(self.attention_head_size)
        if self.head_scale is not None:
            scores = scores * self.head_scale
        if self.mask:
            # An additive mask computed from the input: a padding mask.
            keep = (hidden_states.abs().sum(-1) > 0).to(scores.dtype)
            scores = scores + (1.0 - keep)[:, None, None, :] * -10000.0
        probs = nn.functional.softmax(scores, dim=-1)
        context = torch.matmul(probs, value_layer)
        context = context.permute(0, 2, 1, 3).contiguous()
        new_context_shape = context.size()[:-2] + (self.all_head_size,)
        return context.view(new_context_shape)


class HFLayer(nn.Module):
    def __init__(self, dim, heads, **kw):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(dim, eps=1e-12)
        self.attention = HFSelfAttention(dim, heads, **kw)
        self.attention_output = nn.Linear(dim, dim)
        self.layernorm_after = nn.LayerNorm(dim, eps=1e-12)
        self.intermediate = nn.Linear(dim, 4 * dim)
        self.intermediate_act_fn = nn.GELU()
        self.output = nn.Linear(4 * dim, dim)

    def forward(self, hidden_states):
        attn = self.attention_output(self.attention(self.layernorm_before(hidden_states)))
        hidden_states = attn + hidden_states
        layer_output = self.intermediate_act_fn(self.intermediate(self.layernorm_after(hidden_states)))
        return self.output(layer_output) + hidden_states


class HFViT(nn.Module):
    def __init__(self, img, patch, dim, depth, heads, classes, **kw):
        super().__init__()
        self.projection = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.position_embeddings = nn.Parameter(torch.randn(1, (img // patch) ** 2 + 1, dim) * 0.02)
        self.layer = nn.ModuleList([HFLayer(dim, heads, **kw) for _ in range(depth)])
        self.layernorm = nn.LayerNorm(dim, eps=1e-12)
        self.classifier = nn.Linear(dim, classes)

    def forward(self, pixel_values):
        b = pixel_values.shape[0]
        emb = self.projection(pixel_values).flatten(2).transpose(1, 2)
        emb = torch.cat((self.cls_token.expand(b, -1, -1), emb), dim=1) + self.position_embeddings
        h = emb
        for layer in self.layer:
            h = layer(h)
        h = self.layernorm(h)
        return self.classifier(h[:, 0, :])


# --- nn.TransformerEncoder ---------------------------------------------------

class EncoderViT(nn.Module):
    def __init__(self, img, patch, dim, depth, heads, classes, norm_first=True, mask=False):
        super().__init__()
        self.mask = mask
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (img // patch) ** 2 + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        pad = x.abs().sum(-1) == 0 if self.mask else None  # a key padding mask computed from the input
        x = self.norm(self.encoder(x, src_key_padding_mask=pad))
        return self.head(x[:, 0])


def build(arch, p):
    if arch == "torchvision":
        return TorchvisionViT(**p)
    if arch == "hf":
        return HFViT(**p)
    if arch == "hf-split":
        return HFViT(**p, split_scale=True)
    if arch == "hf-masked":
        return HFViT(**p, mask=True)
    if arch == "hf-headscale":
        return HFViT(**p, head_scale=True)
    if arch == "encoder-pre":
        return EncoderViT(**p, norm_first=True)
    if arch == "encoder-post":
        return EncoderViT(**p, norm_first=False)
    if arch == "torchvision-masked":
        return TorchvisionViT(**p, mask=True)
    if arch == "encoder-masked":
        return EncoderViT(**p, norm_first=True, mask=True)
    raise SystemExit(f"unknown --arch {arch}")


ARCHS = ["torchvision", "hf", "hf-split", "hf-masked", "hf-headscale", "encoder-pre", "encoder-post",
         "torchvision-masked", "encoder-masked"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=ARCHS, required=True)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="fixture")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("out")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    p = PRESETS[a.preset]
    model = build(a.arch, p)
    init_weights(model)
    model.eval()
    x = torch.randn(2, 3, p["img"], p["img"])
    # Under no_grad nn.MultiheadAttention and nn.TransformerEncoderLayer
    # could take their fused fast path, which does not export; the
    # exporter traces with gradients on, as users' export scripts do.
    torch.onnx.export(
        model, x, a.out, opset_version=a.opset,
        input_names=["pixel_values"], output_names=["logits"],
        dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
    )


if __name__ == "__main__":
    main()
