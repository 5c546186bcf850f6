#!/usr/bin/env bash
# Installs the Debian packages quantscope's tests and tools use, only when missing.
# With arguments, installs just those packages.
set -euo pipefail
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(tmux xz-utils)
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "ensure-tools: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
