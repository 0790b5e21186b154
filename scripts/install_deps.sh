#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for building and testing sglc: the C libraries
# (Debian packages) and the Python packages the end-to-end tests use. Idempotent: it checks
# first and only asks apt-get or pip for what is missing.
set -euo pipefail

# libucx-dev: the PD transfer engine; ucx-utils: ucx_perftest for its benchmark; iproute2: the
# PD test across two network namespaces.
apt_pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
          libevent-dev libjansson-dev libpcre2-dev libutf8proc-dev libcmocka-dev
          libucx-dev ucx-utils iproute2)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

py_pkgs=(pytest numpy jinja2 requests openai tokenizers tiktoken transformers gguf)
py_missing=()
for p in "${py_pkgs[@]}"; do
  python3 -c "import $p" 2>/dev/null || py_missing+=("$p")
done
if [ ${#py_missing[@]} -gt 0 ]; then
  echo "install_deps: pip install ${py_missing[*]}"
  python3 -m pip install -q "${py_missing[@]}"
fi
