#!/usr/bin/env bash
# Installs the pinned ONNX Runtime 1.29.0 shared libraries for linux-x64 into .ort/.
#   scripts/setup-ort.sh cpu    CPU build: .ort/libonnxruntime.so + libonnxruntime_providers_shared.so
#   scripts/setup-ort.sh cuda   CUDA 13 plugin EP: .ort/cuda/libonnxruntime_providers_cuda.so, and the
#                               CPU set first: the plugin is ORT's shared-library CUDA provider and
#                               needs libonnxruntime_providers_shared.so beside libonnxruntime.so
# The libraries come from npm packages (fetched with `npm pack`, nothing is installed
# globally) and are checked against pinned SHA-256 sums. Already-present, verified
# files are left alone.
set -euo pipefail

what=${1:-cpu}
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.ort"

cpu_pkg="com.github.asus4.onnxruntime@0.4.9"
cuda_pkg="com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9"
declare -A sums=(
  [libonnxruntime.so]=5715f06d8992ca8eeeddcce43df3a7d38f97d537052126f558e912cb312460ca
  [libonnxruntime_providers_shared.so]=086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d
  [libonnxruntime_providers_cuda.so]=56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037
)

die() { echo "setup-ort: $*" >&2; exit 1; }

verified() { # file name
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "${sums[$2]}" ]
}

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) die "the pinned ONNX Runtime build is for linux-x64; on $(uname -s)-$(uname -m) install ONNX Runtime >= 1.24 yourself and set QUANTSCOPE_ORT_LIB=/path/to/libonnxruntime.so (see README)";;
esac

case "$what" in
  cpu)  pkg=$cpu_pkg;  dir=$dest;      files=(libonnxruntime.so libonnxruntime_providers_shared.so);;
  cuda) pkg=$cuda_pkg; dir=$dest/cuda; files=(libonnxruntime_providers_cuda.so)
        bash "$0" cpu   # the provider bridge beside libonnxruntime.so, verified
        verified "$dest/libonnxruntime_providers_shared.so" libonnxruntime_providers_shared.so ||
          die "libonnxruntime_providers_shared.so is not beside .ort/libonnxruntime.so; the CUDA plugin cannot load without it";;
  *) die "unknown target '$what' (want cpu or cuda)";;
esac

missing=()
for f in "${files[@]}"; do verified "$dir/$f" "$f" || missing+=("$f"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-ort: $what libraries already in ${dir#$root/}/ (verified)"
  exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm is not installed; it fetches the pinned ONNX Runtime package $pkg.
  Install Node.js and npm (Debian: apt-get install npm), or install ONNX Runtime >= 1.24 another way
  and set QUANTSCOPE_ORT_LIB=/path/to/libonnxruntime.so"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "setup-ort: fetching $pkg with npm pack ..."
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null) || die "npm pack $pkg failed (is the npm registry reachable?)"
tarball=$(ls "$tmp"/*.tgz 2>/dev/null | head -1)
[ -n "$tarball" ] || die "npm pack $pkg produced no tarball"

mkdir -p "$dir"
for f in "${missing[@]}"; do
  tar -xzf "$tarball" -C "$tmp" "package/Plugins/Linux/x64/$f" || die "$f not found in $pkg"
  src="$tmp/package/Plugins/Linux/x64/$f"
  got=$(sha256sum "$src" | cut -d' ' -f1)
  [ "$got" = "${sums[$f]}" ] || die "$f from $pkg has SHA-256 $got, expected ${sums[$f]}; refusing to install it"
  cp "$src" "$dir/$f.partial" && mv "$dir/$f.partial" "$dir/$f"
  echo "setup-ort: installed ${dir#$root/}/$f (sha256 ok)"
done
