#!/usr/bin/env bash
# Usage: tools/dist_run.sh NPROC SCRIPT [args]: run tools/SCRIPT on NPROC processes per node with
# torchrun, honouring NNODES, NODE_RANK, MASTER_ADDR and PORT (as OpenMMLab's scripts do).
# SIGTERM or SIGUSR1 to this script (a scheduler's preemption notice) goes to torchrun, which
# passes it on to every rank; training ranks stop after their current iteration with a
# checkpoint and exit 75 (tools/train.py), which torchrun does not pass on: they write it to
# GROUPMIX_EXIT_STATUS_FILE, and this script exits with it. torchrun runs in its own session so
# that a signal to this script's process group reaches it once, through this script.
NPROC=$1
SCRIPT=$2
cd "$(dirname "$0")/.." || exit 1
PYTHON=${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python )}
STATUS=$(mktemp)
trap 'rm -f "$STATUS"' EXIT
PYTHONPATH="$(pwd):${PYTHONPATH:-}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
GROUPMIX_EXIT_STATUS_FILE="$STATUS" \
setsid "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
    --signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 \
    "tools/$SCRIPT" "${@:3}" --launcher pytorch &
LAUNCHER=$!
FORWARDED=  # only the first signal: the ranks are stopping already; torchrun, signalled again,
forward() {  # would stop waiting for them
    [[ -n $FORWARDED ]] || { FORWARDED=$1; kill -s "$1" "$LAUNCHER" 2>/dev/null; }
}
for SIGNAL in TERM USR1 INT HUP; do
    trap "forward $SIGNAL" $SIGNAL
done
while kill -0 "$LAUNCHER" 2>/dev/null; do
    wait "$LAUNCHER"  # returns early when a signal is trapped
done
wait "$LAUNCHER"
CODE=$?
[[ -s $STATUS ]] && CODE=$(cat "$STATUS")
exit "$CODE"
