#!/usr/bin/env bash
# install-deps.sh — the Debian packages tokenmill needs to build and test.
# Used by .ci/run and by the README's set-up commands. Needs root (or sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential cmake pkg-config
      libsqlite3-dev libzstd-dev libarchive-dev libjansson-dev libpcre2-dev
      libutf8proc-dev libopenblas-dev libcmocka-dev libcurl4-openssl-dev
      sqlite3 zstd gzip tar python3 clang)
# a real Slurm + munge for tests/cli/slurm.sh, only when asked (.ci/run sets it),
# so that the quickstart stays lean
if [ "${TOKENMILL_CI_SLURM:-0}" = "1" ]; then
  pkgs+=(slurm-wlm munge)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present"
