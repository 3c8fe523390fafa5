#!/usr/bin/env bash
# audio-xai-kit: set everything up, then run the course's main job or all its tests.
#
#   bash run.sh tour    # set up, generate the embedded corpus, train the lite models, print the results
#   bash run.sh test    # set up, run every notebook as a test (nbdev-test), then pytest
#
# Set-up is a virtual environment in .venv (AXK_VENV to move it) with the package installed
# in editable mode with its dev extras. On a machine without an NVIDIA GPU the CPU build of
# torch (torch==2.13.*) is installed first, so that no CUDA wheels are pulled; set
# AXK_TORCH_INDEX to a CPU wheel index of PyTorch if your pip would otherwise fetch a CUDA build.
# A second run skips set-up unless pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV="${AXK_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

have_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

setup() {
  "$PYTHON" - <<'PY' || { echo "audio-xai-kit needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  local want stamp="$VENV/.axk-setup"
  want=$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && python -c "import audio_xai_kit, torch" 2>/dev/null; then
    return
  fi
  if ! python -c "import torch" 2>/dev/null; then
    if have_gpu; then
      echo "== set-up: GPU found, installing torch with CUDA support"
      python -m pip install "torch>=2.4"
    else
      echo "== set-up: no GPU, installing the CPU build of torch"
      python -m pip install ${AXK_TORCH_INDEX:+--index-url "$AXK_TORCH_INDEX"} "torch==2.13.*"
    fi
  fi
  echo "== set-up: installing audio-xai-kit and its dependencies"
  python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  tour)
    setup
    audio-xai-kit tour "$@"
    ;;
  test)
    setup
    export AUDIO_XAI_KIT_PROGRESS=0
    echo "== warm-up: the embedded corpus and the lite models the notebooks explain (cached in data/)"
    audio-xai-kit tour
    echo "== notebooks (nbdev-test)"
    nbdev-test --n-workers "${AXK_NB_WORKERS:-2}" --timing
    echo "== pytest"
    python -m pytest -q -ra "$@"
    ;;
  *)
    echo "usage: bash run.sh tour|test" >&2
    exit 2
    ;;
esac
