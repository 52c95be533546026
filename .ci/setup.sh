#!/usr/bin/env bash
# Set up streamhand in ./.venv: the system library for pyrealsense2, PyTorch first (the CPU build from
# PyTorch's CPU index on a machine without an NVIDIA GPU, so no CUDA libraries are pulled; the default
# index's build where there is one, or where the CPU index cannot be reached), then the project with its
# dev and realsense extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
# system libraries: libusb-1.0 (pyrealsense2) and Mesa's OpenGL with EGL (the synthetic hands' renderer, headless)
missing=()
ldconfig -p 2>/dev/null | grep -q "libusb-1.0.so.0" || missing+=(libusb-1.0-0)
ldconfig -p 2>/dev/null | grep -q "libEGL.so.1" || missing+=(libegl1)
ldconfig -p 2>/dev/null | grep -q "libEGL_mesa.so.0" || missing+=(libegl-mesa0)
ldconfig -p 2>/dev/null | grep -q "libGL.so.1" || missing+=(libgl1)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || echo "warning: could not install ${missing[*]} (RealSense or the demo's renderer may be unavailable)" >&2
  else
    echo "warning: missing system libraries: ${missing[*]} (apt-get install ${missing[*]})" >&2
  fi
fi
pip_install() {
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    rm -f "$log"
    echo "error: pip install $* failed" >&2
    exit 1
  fi
  rm -f "$log"
}
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  pip_install "torch==2.13.0"  # the default index's build, with CUDA
elif ! .venv/bin/python -m pip install -q --timeout 15 --retries 1 --index-url https://download.pytorch.org/whl/cpu \
    "torch==2.13.0" >/dev/null 2>&1; then
  echo "note: PyTorch's CPU index could not be reached; installing torch from the default index" >&2
  pip_install "torch==2.13.0"
fi
pip_install -e ".[dev,realsense]"
.venv/bin/python -c "import streamhand, torch, mediapipe, zmq, onnxruntime, moderngl, numba"
# compile the per-frame arithmetic once (numba keeps it beside the package), so no run or test pays for it
.venv/bin/streamhand precompile
