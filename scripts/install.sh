#!/usr/bin/env bash
# Create .venv (once) and install litpredict with its test, launcher and lightning extras
# into it (CI tests both Lightning packages: pytorch_lightning and the unified lightning).
# torch==2.14.1 / torchvision==0.29.1 are what pip picks on these machines; see README.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet -e '.[dev,launchers,lightning]'
