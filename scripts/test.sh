#!/usr/bin/env bash
# Install (scripts/install.sh), lint, then run the whole test suite, DDP and slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
.venv/bin/pytest "$@"
