package zoo

import (
	"slices"
	"strings"
	"sync"
)

// vitSpec fills the fields every ViT-family entry shares.
func vitSpec(name string, fam Family, desc string, params int64, res int, pre Preprocess, c ViTConfig) Spec {
	kind, dim := c.output()
	return Spec{
		Name: name, Family: fam, Description: desc, Params: params, Tolerance: 0.005,
		Resolution: res, Classes: c.Classes, Embed: c.Dim, Output: kind, OutputDim: dim,
		Preprocess: pre, Arch: c,
	}
}

// cnnSpec fills the fields of a convolutional entry.
func cnnSpec(name string, fam Family, desc string, params int64, tol float64, res int, pre Preprocess, a Arch) Spec {
	kind, dim := a.output()
	return Spec{
		Name: name, Family: fam, Description: desc, Params: params, Tolerance: tol,
		Resolution: res, Classes: dim, Embed: a.width(), Output: kind, OutputDim: dim,
		Preprocess: pre, Arch: a,
	}
}

// ViT configurations of the standard sizes.
func vitB(p int) ViTConfig {
	return ViTConfig{Dim: 768, Depth: 12, Heads: 12, MLPDim: 3072, Patch: p, Classes: 1000}
}

func vitS(p int) ViTConfig {
	return ViTConfig{Dim: 384, Depth: 12, Heads: 6, MLPDim: 1536, Patch: p, Classes: 1000}
}

func vitL(p int) ViTConfig {
	return ViTConfig{Dim: 1024, Depth: 24, Heads: 16, MLPDim: 4096, Patch: p, Classes: 1000}
}

func with(c ViTConfig, f ViTFlavor, classes int, layerScale float32) ViTConfig {
	c.Flavor, c.Classes, c.LayerScale = f, classes, layerScale
	return c
}

// The LayerScale factors are set to 0.1, BEiT's initial value and the
// order of magnitude of trained DINOv2 factors, so both residual branches
// matter as they do in the trained models (DINOv2's initial 1e-5 would
// make the blocks nearly vanish).
const layerScaleInit = 0.1

// catalog is the built-in model list, in the order `models list` shows it:
// the 16 models of the published study first.
var catalog = []Spec{
	vitSpec("vit-huge-14", FamilyViT, "ViT-H/14 (Dosovitskiy et al.), ImageNet-1k head", 632_045_800, 224, InceptionNorm,
		ViTConfig{Dim: 1280, Depth: 32, Heads: 16, MLPDim: 5120, Patch: 14, Classes: 1000}),
	vitSpec("vit-large-16", FamilyViT, "ViT-L/16, ImageNet-1k head", 304_326_632, 224, InceptionNorm, vitL(16)),
	vitSpec("vit-base-16", FamilyViT, "ViT-B/16, ImageNet-1k head", 86_567_656, 224, InceptionNorm, vitB(16)),
	vitSpec("vit-base-32", FamilyViT, "ViT-B/32, ImageNet-1k head", 88_224_232, 224, InceptionNorm, vitB(32)),
	vitSpec("vit-base-16-384", FamilyViT, "ViT-B/16 at 384 px (577 tokens), ImageNet-1k head", 86_859_496, 384, InceptionNorm, vitB(16)),
	vitSpec("dinov2-large", FamilyDINOv2, "DINOv2 ViT-L/14 backbone with LayerScale, CLS embedding out", 303_228_928, 224, ImageNetNorm,
		with(vitL(14), FlavorDINOv2, 0, layerScaleInit)),
	vitSpec("dinov2-base", FamilyDINOv2, "DINOv2 ViT-B/14 backbone with LayerScale, CLS embedding out", 85_725_696, 224, ImageNetNorm,
		with(vitB(14), FlavorDINOv2, 0, layerScaleInit)),
	vitSpec("dino-vitb16", FamilyDINO, "DINO ViT-B/16 backbone, CLS embedding out", 85_798_656, 224, ImageNetNorm,
		with(vitB(16), FlavorViT, 0, 0)),
	vitSpec("dino-vits16", FamilyDINO, "DINO ViT-S/16 backbone, CLS embedding out", 21_665_664, 224, ImageNetNorm,
		with(vitS(16), FlavorViT, 0, 0)),
	vitSpec("beit-large-16", FamilyBEiT, "BEiT-L/16: relative position bias, LayerScale, mean pooling, ImageNet-1k head", 304_430_568, 224, InceptionNorm,
		with(vitL(16), FlavorBEiT, 1000, layerScaleInit)),
	vitSpec("beit-base-16", FamilyBEiT, "BEiT-B/16: relative position bias, LayerScale, mean pooling, ImageNet-1k head", 86_530_984, 224, InceptionNorm,
		with(vitB(16), FlavorBEiT, 1000, layerScaleInit)),
	vitSpec("deit-base-distilled-384", FamilyDeiT, "DeiT-B distilled at 384 px: class + distillation tokens, two heads averaged", 87_630_032, 384, ImageNetNorm,
		with(vitB(16), FlavorDeiTDistilled, 1000, 0)),
	vitSpec("deit-small-distilled", FamilyDeiT, "DeiT-S distilled: class + distillation tokens, two heads averaged", 22_436_432, 224, ImageNetNorm,
		with(vitS(16), FlavorDeiTDistilled, 1000, 0)),
	vitSpec("deit-tiny", FamilyDeiT, "DeiT-Ti/16, ImageNet-1k head", 5_717_416, 224, ImageNetNorm,
		ViTConfig{Dim: 192, Depth: 12, Heads: 3, MLPDim: 768, Patch: 16, Classes: 1000}),
	cnnSpec("mobilevit-small", FamilyMobileViT, "MobileViT-S: MobileNetV2 blocks + MobileViT blocks (144/192/240), 256 px", 5_578_632, 0.03, 256, UnitNorm,
		MobileViTConfig{Stem: 16, Channels: [5]int{32, 64, 96, 128, 160}, Dims: [3]int{144, 192, 240}, Depths: [3]int{2, 4, 3},
			Expansion: 4, Heads: 4, Patch: 2, MLPRatio: 2, ExpChannels: 640, Classes: 1000}),
	cnnSpec("mobilevit-xxs", FamilyMobileViT, "MobileViT-XXS: the 1.3M-parameter MobileViT (64/80/96, expansion 2), 256 px", 1_272_024, 0.03, 256, UnitNorm,
		MobileViTConfig{Stem: 16, Channels: [5]int{16, 24, 48, 64, 80}, Dims: [3]int{64, 80, 96}, Depths: [3]int{2, 4, 3},
			Expansion: 2, Heads: 4, Patch: 2, MLPRatio: 2, ExpChannels: 320, Classes: 1000}),
	vitSpec("deit-small", FamilyDeiT, "DeiT-S/16, ImageNet-1k head", 22_050_664, 224, ImageNetNorm, vitS(16)),
	vitSpec("deit-base", FamilyDeiT, "DeiT-B/16, ImageNet-1k head", 86_567_656, 224, ImageNetNorm, vitB(16)),
	vitSpec("deit-base-distilled", FamilyDeiT, "DeiT-B distilled: class + distillation tokens, two heads averaged", 87_338_192, 224, ImageNetNorm,
		with(vitB(16), FlavorDeiTDistilled, 1000, 0)),
	vitSpec("dinov2-small", FamilyDINOv2, "DINOv2 ViT-S/14 backbone with LayerScale, CLS embedding out", 21_629_184, 224, ImageNetNorm,
		with(vitS(14), FlavorDINOv2, 0, layerScaleInit)),
	vitSpec("clip-vit-b32", FamilyCLIP, "CLIP ViT-B/32 image encoder (QuickGELU), 512-d projected embedding", 87_849_216, 224, CLIPNorm,
		ViTConfig{Flavor: FlavorCLIP, Dim: 768, Depth: 12, Heads: 12, MLPDim: 3072, Patch: 32, Proj: 512}),
	vitSpec("clip-vit-b16", FamilyCLIP, "CLIP ViT-B/16 image encoder (QuickGELU), 512-d projected embedding", 86_192_640, 224, CLIPNorm,
		ViTConfig{Flavor: FlavorCLIP, Dim: 768, Depth: 12, Heads: 12, MLPDim: 3072, Patch: 16, Proj: 512}),
	cnnSpec("resnet-50", FamilyCNN, "ResNet-50 (torchvision v1.5), BatchNorm folded into Conv", 25_557_032, 0.005, 224, ImageNetNorm,
		ResNetConfig{Layers: [4]int{3, 4, 6, 3}, Classes: 1000}),
	cnnSpec("mobilenet-v2", FamilyCNN, "MobileNetV2 (torchvision, width 1.0), BatchNorm folded into Conv", 3_504_872, 0.005, 224, ImageNetNorm,
		MobileNetV2Config{Width: 1, Classes: 1000}),
}

var (
	catalogOnce sync.Once
	analyzed    []Spec
)

// Catalog returns the built-in models, with their GFLOPs computed from the
// architecture. The slice is a copy: callers may change it.
func Catalog() []Spec {
	catalogOnce.Do(func() {
		analyzed = make([]Spec, len(catalog))
		for i, s := range catalog {
			if a, err := Analyze(s); err == nil {
				s.GFLOPs = a.GFLOPs
			}
			analyzed[i] = s
		}
	})
	return slices.Clone(analyzed)
}

// Lookup returns the catalog entry called name (case-insensitive).
func Lookup(name string) (Spec, bool) {
	for _, s := range Catalog() {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return Spec{}, false
}

// Names returns the catalog's model names in catalog order.
func Names() []string {
	names := make([]string, len(catalog))
	for i, s := range catalog {
		names[i] = s.Name
	}
	return names
}
