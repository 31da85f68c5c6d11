#!/usr/bin/env bash
# device-check.sh — replaced by tests/gpu/visit.sh, the GPU visit that fits one
# command of the lent machine (<= 8 minutes, throughput numbers early, results
# written as they come); kept as a thin wrapper for old references. Stage
# first on the build machine: bash tests/gpu/stage.sh build-cuda. A BUILD_DIR
# argument is no longer used: the visit runs what gpu-stage/ holds.
[ $# -gt 0 ] && echo "device-check.sh: BUILD_DIR '$1' ignored: the visit runs gpu-stage/ (tests/gpu/stage.sh $1)" >&2
echo "device-check.sh: running tests/gpu/visit.sh" >&2
exec bash "$(dirname "$0")/visit.sh"
