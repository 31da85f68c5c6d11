#!/usr/bin/env bash
# install-deps.sh — the Debian packages tokenmill needs to build and test.
# Used by .ci/run and by the README's set-up commands. Run it as root (a fresh
# Debian machine or container: no sudo needed, none used) or as a user who may
# use sudo (only apt-get runs under sudo). When every package is present it
# installs nothing and needs neither.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential cmake pkg-config
      libsqlite3-dev libzstd-dev libarchive-dev libjansson-dev libpcre2-dev
      libutf8proc-dev libopenblas-dev libcmocka-dev libcurl4-openssl-dev
      sqlite3 zstd gzip tar python3 clang
      python3-jsonschema)  # tests/cli/status_batch.sh: schemas/openai_batch.schema.json
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
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-deps: these packages are missing: ${missing[*]}" >&2
      echo "install-deps: installing them needs root, and sudo is not installed: run this script as root" >&2
      echo "install-deps: (e.g. su -c 'bash scripts/install-deps.sh'), or install them yourself, then run it again" >&2
      exit 1
    fi
    as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
  fi
  ${as_root[@]+"${as_root[@]}"} apt-get update -qq
  ${as_root[@]+"${as_root[@]}"} apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present"
