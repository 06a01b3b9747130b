#!/bin/bash
# Multi-node openjepa training under SLURM: one torchrun per node, each starting one process per GPU.
#
#   sbatch --nodes=4 scripts/slurm_train.sh ijepa/vit_h14_in1k data.root=/data/imagenet/train
#
# Edit the #SBATCH lines for your cluster (partition, account, time). Resume after a preemption or
# a crash with the same command plus --resume (SLURM's --requeue does this for you with RESUME=1).
#SBATCH --job-name=openjepa
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=72:00:00
#SBATCH --requeue
#SBATCH --output=slurm-%j.out
set -euo pipefail

GPUS_PER_NODE=${GPUS_PER_NODE:-8}
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
RESUME_FLAG=""
if [ "${RESUME:-0}" = 1 ] || [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then RESUME_FLAG="--resume"; fi

srun torchrun \
  --nnodes="$SLURM_NNODES" --nproc_per_node="$GPUS_PER_NODE" \
  --rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d --rdzv_endpoint="$head_node:29500" \
  -m openjepa train "$@" $RESUME_FLAG
