#!/usr/bin/env bash
# A virtual environment with LeRobot 0.4.4's own dataset code, for the two LeRobot checks:
#   scripts/lerobot_fixture.py   LeRobot writes tests/data/fixtures/lerobot_v30 (robo's CI test reads it)
#   scripts/check_lerobot.py     robo writes a dataset; LeRobot's loader, stats aggregation, normaliser
#                                and a torch DataLoader must accept it and agree with robo's reader
#
#   bash scripts/lerobot_env.sh [VENV]        (default .venv-lerobot; about 3 min, 1.5 GB)
#   VENV/bin/python scripts/check_lerobot.py
#
# Why a separate environment, and why --no-deps: LeRobot 0.4.4 pins torch<2.11, diffusers<0.36,
# huggingface-hub<0.36 and torchvision<0.26, which robo's environment (torch 2.13, diffusers 0.42) cannot
# meet, and its full dependency set pulls robot SDKs, wandb and rerun. Its dataset code needs only what is
# installed below. PyPI's torchvision wheel is a CUDA build whose C++ ops cannot load beside a CPU torch;
# LeRobot's dataset code uses none of those ops (video is decoded by torchcodec), and
# scripts/lerobot_common.py lets `import torchvision` succeed without them (see there).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-lerobot}
if command -v apt-get >/dev/null 2>&1; then  # torchcodec decodes with the system's FFmpeg libraries
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8 >/dev/null
fi
python3 -m venv "$VENV"
PIP="$VENV/bin/python -m pip install -q"
$PIP "torch==2.13.0"  # the CPU build where one is provided (as scripts/install.sh)
# LeRobot's own pins, except torch / torchvision / torchcodec (the releases that match torch 2.13)
$PIP --no-deps "lerobot==0.4.4" "torchvision==0.28.0" "torchcodec==0.13.0" "accelerate>=1.10,<2" \
  "einops>=0.8,<0.9" "pyserial>=3.5,<4"
$PIP "datasets>=4,<5" "huggingface-hub>=0.34.2,<0.36" "draccus==0.10.0" "deepdiff>=7.0.1,<9" \
  "av>=15,<16" "packaging>=24.2,<26" pandas pillow numpy pyarrow pyyaml psutil safetensors
"$VENV/bin/python" -c "import sys; sys.path.insert(0, 'scripts'); import lerobot_common; lerobot_common.import_lerobot(); print('LeRobot', lerobot_common.lerobot_version(), 'ready in $VENV')"
