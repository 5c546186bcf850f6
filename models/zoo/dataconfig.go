package zoo

import (
	"strconv"
	"strings"
)

// Metadata keys an exporter can set on a model to declare how its inputs
// are prepared (quantscope's own builds set the first two).
const (
	MetaMean          = "quantscope.mean"          // "r,g,b"
	MetaStd           = "quantscope.std"           // "r,g,b"
	MetaCropPct       = "quantscope.crop_pct"      // "0.875"
	MetaInterpolation = "quantscope.interpolation" // "bilinear" or "bicubic"
)

// DataConfig is how a model's evaluation images are prepared: its
// normalization and the resize before the centre crop, as timm's data
// configs give them (pretrained_cfg crop_pct and interpolation).
type DataConfig struct {
	Mean, Std [3]float32
	// CropPct is the centre crop's share of the resized image (the shorter
	// side is resized to size / CropPct).
	CropPct float64
	// Interpolation is "bilinear" or "bicubic".
	Interpolation string
	// Source says where the figures come from: the family's data config,
	// the model's metadata, or an assumption.
	Source string
}

// DataConfig returns the preparation the model expects: for a catalog
// family, timm's data config of its reference weights; for an imported
// model, what its metadata declares (MetaMean, MetaStd, MetaCropPct,
// MetaInterpolation), else ImageNet normalization with torchvision's
// classic 0.875 bilinear crop.
func (s Spec) DataConfig() DataConfig {
	d := DataConfig{Mean: s.Preprocess.Mean, Std: s.Preprocess.Std}
	if d.Std == ([3]float32{}) {
		d.Mean, d.Std = ImageNetNorm.Mean, ImageNetNorm.Std
	}
	// timm's pretrained_cfg per family: vision_transformer.py,
	// deit.py, beit.py, mobilevit.py default to crop_pct 0.9 bicubic;
	// models at 384 px and DINOv2 to 1.0; torchvision's CNN weights to
	// 0.875 bilinear; OpenAI CLIP's own transform resizes the shorter side
	// to the input size (1.0) bicubic.
	switch s.Family {
	case FamilyViT, FamilyDeiT, FamilyBEiT, FamilyDINO, FamilyMobileViT:
		d.CropPct, d.Interpolation = 0.9, "bicubic"
		if s.Resolution >= 384 {
			d.CropPct = 1
		}
		d.Source = "timm data config (" + string(s.Family) + ")"
	case FamilyDINOv2:
		d.CropPct, d.Interpolation, d.Source = 1, "bicubic", "timm data config (DINOv2)"
	case FamilyCLIP:
		d.CropPct, d.Interpolation, d.Source = 1, "bicubic", "OpenAI CLIP preprocessing"
	case FamilyCNN:
		d.CropPct, d.Interpolation, d.Source = 0.875, "bilinear", "torchvision ImageNet evaluation"
	default:
		d.CropPct, d.Interpolation = 0.875, "bilinear"
		d.Source = "assumed (torchvision's 0.875 bilinear crop)"
		if s.Preprocess.Name == "model metadata" {
			d.Source = "model metadata (mean, std); crop assumed 0.875 bilinear"
		}
		if s.CropPct > 0 {
			d.CropPct = s.CropPct
		}
		if s.Interpolation != "" {
			d.Interpolation = s.Interpolation
		}
		if s.CropPct > 0 || s.Interpolation != "" {
			d.Source = "model metadata"
		}
	}
	return d
}

// readDataMeta reads MetaCropPct and MetaInterpolation into s; malformed
// values are ignored (the defaults apply).
func readDataMeta(s *Spec, meta map[string]string) {
	if v, err := strconv.ParseFloat(strings.TrimSpace(meta[MetaCropPct]), 64); err == nil && v > 0 && v <= 1 {
		s.CropPct = v
	}
	switch v := strings.ToLower(strings.TrimSpace(meta[MetaInterpolation])); v {
	case "bilinear", "bicubic":
		s.Interpolation = v
	}
}
