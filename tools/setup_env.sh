#!/usr/bin/env bash
# Create (or check) the project's environment in .venv/ at the repository root.
# Idempotent: on a machine where everything is installed it only verifies and exits in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PY=$VENV/bin/python
say() { printf '[setup] %s\n' "$*"; }
# Run a long command with a line every 30 s saying it is alive and for how long.
with_progress() {
  local start=$SECONDS ticker status=0
  ( while sleep 30; do say "  ... still working, $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s elapsed"; done ) &
  ticker=$!
  "$@" || status=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  return $status
}

if [[ ! -x $PY ]]; then
  say "creating virtual environment in $VENV/"
  python3 -m venv "$VENV"
fi
# pip, minus its warnings about this machine's local package index folders
pip_install() {
  "$PY" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v 'is ignored: it is neither' >&2)
}

if "$PY" - <<'PY' 2>/dev/null; then
import importlib.metadata as md
want = {'torch': '2.11.0', 'torchvision': '0.26.0', 'mmengine': '0.10.7', 'mmcv': '2.1.0',
        'mmdet': '3.3.0', 'mmsegmentation': '1.2.2', 'mmpretrain': '1.2.0',
        'onnx': '1.23.2', 'onnxruntime': '1.32.0', 'onnxscript': '0.7.2', 'mmdeploy': '1.3.1'}
for name, version in want.items():
    assert md.version(name).split('+')[0] == version, name
for name in ('timm', 'ftfy', 'regex', 'pytest', 'groupmix_backbones'):
    md.version(name)
import mmcv.ops  # compiled ops present
PY
  say "environment in $VENV/ is ready (torch 2.11.0, mmcv 2.1.0 with ops, mmdet/mmseg/mmpretrain, onnx/onnxruntime, mmdeploy)"
  exit 0
fi

say "installing torch 2.11.0 + torchvision 0.26.0 (about 1 minute)"
with_progress pip_install torch==2.11.0 torchvision==0.26.0
say "installing build tools and mmengine 0.10.7"
pip_install "setuptools>=77,<81" wheel ninja mmengine==0.10.7
if ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
  say "building mmcv 2.1.0 with compiled ops (about 10 minutes the first time; pip caches the wheel)"
  MMCV_WITH_OPS=1 with_progress pip_install --no-build-isolation mmcv==2.1.0
fi
say "installing mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0, timm, test tools"
pip_install mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0 "timm>=1.0,<2" ftfy regex \
  pytest pycocotools
say "installing onnx 1.23.2, onnxruntime 1.32.0, onnxscript 0.7.2 (tools/deployment/pytorch2onnx.py)"
pip_install onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2
say "installing mmdeploy 1.3.1 without its dependencies (tools/deployment/mmdeploy_export.py; it pins protobuf<=3.20.2, and runs with this stack's)"
pip_install --no-deps mmdeploy==1.3.1 aenum prettytable terminaltables multiprocess dill
say "installing groupmix_backbones (editable)"
pip_install --no-build-isolation --no-deps -e .
say "environment ready in $VENV/"
