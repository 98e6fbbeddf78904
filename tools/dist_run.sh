#!/usr/bin/env bash
# Usage: tools/dist_run.sh NPROC SCRIPT [args]: run tools/SCRIPT on NPROC processes per node with
# torchrun, honouring NNODES, NODE_RANK, MASTER_ADDR and PORT (as OpenMMLab's scripts do).
NPROC=$1
SCRIPT=$2
cd "$(dirname "$0")/.." || exit 1
PYTHON=${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python )}
PYTHONPATH="$(pwd):${PYTHONPATH:-}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
    "tools/$SCRIPT" "${@:3}" --launcher pytorch
