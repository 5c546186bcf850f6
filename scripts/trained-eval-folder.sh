#!/usr/bin/env bash
# Lays the trained fixture's held-out images (models/testdata/trained/images,
# NNNN-classK.png) out as a labelled ImageFolder of symbolic links,
# OUT/classK/NNNN.png, for --eval-dir:
#
#   scripts/trained-eval-folder.sh /tmp/trained-eval
#   cp models/testdata/trained/vit-synthetic.onnx /tmp/   # variants are cached beside the model
#   quantscope tune --model /tmp/vit-synthetic.onnx \
#       --budget 'acc-drop<=0.5' --eval-dir /tmp/trained-eval --crop-pct 1
#
# (The images are made at the model's 32 px input: --crop-pct 1 keeps them
# as they are, as the training script fed them.)
set -euo pipefail
out=${1:?usage: $0 OUT_DIR}
src=$(cd "$(dirname "$0")/../models/testdata/trained/images" && pwd)
for f in "$src"/*.png; do
	name=$(basename "$f" .png)
	class=${name#*-}
	mkdir -p "$out/$class"
	ln -sf "$f" "$out/$class/$name.png"
done
echo "$(find "$out" -name '*.png' | wc -l) images in $(find "$out" -mindepth 1 -maxdepth 1 -type d | wc -l) classes under $out"
