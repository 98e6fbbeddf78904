#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node. Without a GPU the GPUS
# processes run on the CPU with gloo.
exec "$(dirname "$0")/dist_run.sh" "$2" train.py "$1" "${@:3}"
