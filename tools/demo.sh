#!/usr/bin/env bash
# The main job: set up .venv/ if needed, then train, evaluate and draw a family's demo configs on
# the generated demo data (tools/demo.py says what it does, step by step).
#   bash tools/demo.sh [groupmixformer|flatten|sgformer|unified|unified-groupmix|unified-flatten|all]
#   (default: groupmixformer)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
CUDA_VISIBLE_DEVICES="" exec .venv/bin/python tools/demo.py "$@"
