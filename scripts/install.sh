#!/usr/bin/env bash
# One-command install of robo: system libraries (EGL for headless MuJoCo rendering, libusb for
# RealSense), the CPU build of torch, then robo itself with its C++ controller (compiled by the
# package build) and the dev extras. Run from the repository root: `bash scripts/install.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    libusb-1.0-0 libegl1 libegl-mesa0 libgl1 libgles2 libglib2.0-0 >/dev/null
fi
# torch first: a CPU build where one is provided (on a CUDA machine, keep your own torch).
python -c "import torch" 2>/dev/null || python -m pip install "torch==2.13.0"
python -m pip install -e ".[dev]"
python -m robo.cli info
