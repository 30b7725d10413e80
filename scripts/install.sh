#!/usr/bin/env bash
# One-command install of robo: system libraries (EGL for headless MuJoCo rendering, libusb for
# RealSense, Debian's chromium for the console's browser tests), torch, then robo itself with its C++ controller (compiled by the package build) and the
# dev extras. Run from the repository root: `bash scripts/install.sh`.
#
# torch: an installed torch is kept (your CUDA build stays). Otherwise, on a machine without an NVIDIA
# GPU, the CPU build: from PyTorch's CPU wheel index (~200 MB), falling back to PyPI's torch==2.13.0
# when that index is unreachable (PyPI's wheel is the CUDA build: ~0.5 GB plus several GB of nvidia-*
# wheels, unless your pip is configured with a local CPU wheel, as on robo's CI machines). With an
# NVIDIA GPU (nvidia-smi lists one), PyPI's default CUDA build.
#
# Recommended: run it inside a virtual environment (`python -m venv .venv && . .venv/bin/activate`);
# outside one it installs into whatever `python` is, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    libusb-1.0-0 libegl1 libegl-mesa0 libgl1 libgles2 libglib2.0-0 chromium >/dev/null
fi
if python -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)'; then
  echo "robo install: not in a virtual environment; installing into $(python -c 'import sys; print(sys.prefix)')" \
       "(recommended: python -m venv .venv && . .venv/bin/activate, then run this again)"
fi
TORCH="torch==2.13.0"
if python -c "import torch" 2>/dev/null; then
  echo "robo install: keeping the installed torch $(python -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "robo install: NVIDIA GPU found: torch from PyPI (a CUDA build)"
  python -m pip install "$TORCH"
else
  echo "robo install: no NVIDIA GPU: the CPU build of torch"
  python -m pip install --timeout 15 --retries 1 "$TORCH" --index-url https://download.pytorch.org/whl/cpu \
    || { echo "robo install: PyTorch's CPU index unreachable: torch from PyPI"; python -m pip install "$TORCH"; }
fi
python -m pip install -e ".[dev]"
python -m robo.cli info
