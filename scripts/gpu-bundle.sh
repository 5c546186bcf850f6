#!/usr/bin/env bash
# Packs files for a GPU host that has no Go toolchain and no npm (see README,
# "On a GPU host without Go or npm"): each file is compressed with xz and
# split into parts of at most PART_SIZE bytes (default 45M = 45 MiB; xz level
# XZ_LEVEL, default 6), so that every part can travel on its own;
# parts.sha256 lists every part's SHA-256, files.sha256 every rebuilt file's,
# and reassemble.sh (scripts/gpu-reassemble.sh) checks the parts, rebuilds
# the files and checks them.
#   scripts/gpu-bundle.sh OUT_DIR DEST=SRC...
# DEST is where the file goes on the GPU host, relative to the directory
# reassemble.sh is given (the repository root there), e.g.
# .ort/cuda/libonnxruntime_providers_cuda.so=.ort/cuda/libonnxruntime_providers_cuda.so
set -euo pipefail

die() { echo "gpu-bundle: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
part_size=${PART_SIZE:-45M}
[ $# -ge 2 ] || die "usage: gpu-bundle.sh OUT_DIR DEST=SRC..."
command -v xz >/dev/null || die "xz is not installed (Debian: apt-get install xz-utils)"
out=$1
shift

# partname turns a destination path into the file-name prefix of its parts
# (gpu-reassemble.sh computes the same): slashes become "__", a leading dot goes.
partname() { local n=${1//\//__}; echo "${n#.}"; }

for spec in "$@"; do
  dest=${spec%%=*}
  src=${spec#*=}
  [ "$dest" != "$spec" ] && [ -n "$dest" ] && [ -n "$src" ] || die "$spec: want DEST=SRC"
  case "/$dest/" in
    //*|*/../*|*/./*) die "$dest: the destination must be a plain relative path";;
  esac
  [[ "$dest" =~ ^[A-Za-z0-9._/-]+$ ]] || die "$dest: only letters, digits and ._-/ in destinations"
  [ -f "$src" ] || die "$src: no such file"
done

rm -rf "$out"
mkdir -p "$out/parts"
: > "$out/parts.sha256"
: > "$out/files.sha256"
: > "$out/executables"
for spec in "$@"; do
  dest=${spec%%=*}
  src=${spec#*=}
  name=$(partname "$dest")
  xz -"${XZ_LEVEL:-6}" -T0 -c "$src" | split -b "$part_size" -d -a 2 - "$out/parts/$name.xz."
  (cd "$out" && sha256sum parts/"$name".xz.* >> parts.sha256)
  echo "$(sha256sum < "$src" | cut -d' ' -f1)  $dest" >> "$out/files.sha256"
  [ -x "$src" ] && echo "$dest" >> "$out/executables"
  echo "gpu-bundle: $dest <- $src: $(ls "$out/parts/$name".xz.* | wc -l) part(s), $(stat -c %s "$src") bytes"
done
cp "$here/gpu-reassemble.sh" "$out/reassemble.sh"
chmod +x "$out/reassemble.sh"
echo "gpu-bundle: $out: $(wc -l < "$out/parts.sha256") parts of at most $part_size; on the GPU host: bash $out/reassemble.sh ."
