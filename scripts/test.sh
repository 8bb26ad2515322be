#!/usr/bin/env bash
# Install (scripts/install.sh; as root also slurm-wlm for the scheduler tests), lint, then
# run the whole test suite: DDP, torchrun, SLURM and slow tests included. Without root the
# SLURM tests skip themselves and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -eq 0 ]]; then
  bash scripts/slurm-up.sh install
fi
bash scripts/install.sh
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
.venv/bin/pytest "$@"
