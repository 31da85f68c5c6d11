#!/usr/bin/env bash
# quickstart.sh — README command 1: install the Debian packages, build
# tokenmill (CUDA backend too when nvcc is on the PATH), and run the built-in
# demo: a tiny random-weight model and a sample job, submitted, run on the
# CPU, results written to demo/output.jsonl.
# Run it as root (a fresh Debian machine) or as your user: then only the
# package installation uses sudo (scripts/install-deps.sh), and the build and
# the demo belong to you. Then try examples/ (bash examples/walkthrough.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B build -DTOKENMILL_CUDA=AUTO
cmake --build build -j"$(nproc)"
./build/tokenmill --version
./build/tokenmill demo --dir demo
