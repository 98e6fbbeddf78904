#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 PORT=29500 SIGNAL=USR1 SIGNAL_SECONDS=300 SRUN_ARGS=...] tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# Each task runs tools/train.py --launcher slurm: mmengine reads SLURM_PROCID, SLURM_NTASKS and
# SLURM_LOCALID, and the first host of SLURM_NODELIST (scontrol) becomes MASTER_ADDR; MASTER_PORT
# is PORT.
# Preemption: Slurm sends SIGNAL to the tasks SIGNAL_SECONDS before the time limit (srun
# --signal); they stop after their current iteration with a checkpoint and exit 75. Inside a
# batch job (sbatch tools/slurm_train.sh ...) the job is then requeued (scontrol requeue), and
# the requeued job (SLURM_RESTART_COUNT > 0) resumes from WORK_DIR by itself.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PREEMPTED=75  # tools/train.py's exit code after a preemption checkpoint
cd "$(dirname "$0")/.." || exit 1
PYTHON=${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python )}
RESUME=()
if [[ ${SLURM_RESTART_COUNT:-0} -gt 0 && " ${*:5} " != *" --resume"* ]]; then
    RESUME=(--resume)  # a requeued job: from the newest intact checkpoint of WORK_DIR
fi
# Slurm signals the batch shell too when it preempts a job: wait for the tasks, then requeue
trap 'echo "preemption signal received: waiting for the tasks to save"' TERM USR1

PYTHONPATH="$(pwd):${PYTHONPATH:-}" MASTER_PORT=${PORT:-29500} \
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
    --signal="${SIGNAL:-USR1}@${SIGNAL_SECONDS:-300}" \
    $SRUN_ARGS "$PYTHON" -u tools/train.py "$CONFIG" --work-dir="$WORK_DIR" --launcher slurm \
    "${RESUME[@]}" "${@:5}"
CODE=$?
if [[ $CODE -eq $PREEMPTED && -n ${SLURM_JOB_ID:-} ]]; then
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$CODE"
