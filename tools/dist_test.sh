#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
exec "$(dirname "$0")/dist_run.sh" "$3" test.py "$1" "$2" "${@:4}"
