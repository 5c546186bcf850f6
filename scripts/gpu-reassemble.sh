#!/usr/bin/env bash
# Rebuilds the files of a quantscope GPU bundle (scripts/gpu-bundle.sh makes
# it; it travels as reassemble.sh beside parts/, parts.sha256, files.sha256
# and executables). Every part is checked against parts.sha256 first (a
# missing or damaged part is named: copy it again), then each file's parts
# are joined and decompressed, the result checked against files.sha256 and
# only then moved into place under DEST_ROOT.
#   bash reassemble.sh [DEST_ROOT]      # default: the working directory
set -euo pipefail

die() { echo "reassemble: $*" >&2; exit 1; }
bundle=$(cd "$(dirname "$0")" && pwd)
root=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
command -v xz >/dev/null || die "xz is not installed"
command -v sha256sum >/dev/null || die "sha256sum is not installed"
partname() { local n=${1//\//__}; echo "${n#.}"; }

cd "$bundle"
[ -s parts.sha256 ] && [ -s files.sha256 ] || die "$bundle: no parts.sha256/files.sha256: not a quantscope GPU bundle"
missing=()
while read -r _ part; do
  [ -f "$part" ] || missing+=("$part")
done < parts.sha256
[ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (copy them into $bundle/parts/ and run this again)"
bad=$(set +o pipefail; sha256sum -c parts.sha256 2>/dev/null | grep -v ': OK$' || true)
[ -z "$bad" ] || die "damaged (SHA-256 differs): $(echo "$bad" | cut -d: -f1 | tr '\n' ' ')(copy them again)"

while read -r sum dest; do
  name=$(partname "$dest")
  target="$root/$dest"
  mkdir -p "$(dirname "$target")"
  tmp="$target.partial.$$"
  if ! cat parts/"$name".xz.* | xz -d > "$tmp"; then
    rm -f "$tmp"
    die "$dest: the parts do not decompress"
  fi
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    rm -f "$tmp"
    die "$dest: SHA-256 $got after reassembly, expected $sum"
  fi
  if grep -qxF "$dest" executables 2>/dev/null; then chmod 0755 "$tmp"; else chmod 0644 "$tmp"; fi
  mv -f "$tmp" "$target"
  echo "reassemble: $dest (sha256 ok)"
done < files.sha256
