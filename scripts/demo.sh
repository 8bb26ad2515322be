#!/usr/bin/env bash
# The main job end to end on the embedded demo data: install, train a small model,
# predict with its last checkpoint, then sweep over all its checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
PY=.venv/bin/python
OUT=outputs/demo
rm -rf "$OUT"

echo "== train: linear regression, 3 epochs, one checkpoint per epoch"
$PY -m litpredict.train experiment=linear_regression trainer.max_epochs=3 hydra.run.dir=$OUT/train

echo "== predict with the last checkpoint"
$PY -m litpredict.predict experiment=linear_regression ckpt_path=$OUT/train/checkpoints/last.ckpt \
  hydra.run.dir=$OUT/predict
$PY - <<PY
import json
m = json.load(open("$OUT/predict/manifest.json"))
print(f"status={m['status']} predictions={m['num_predictions']} metrics={m['metrics']}")
PY

echo "== sweep over every checkpoint of the training run"
$PY -m litpredict.predict -m experiment=linear_regression \
  "ckpt_path=glob(\"$OUT/train/checkpoints/epoch=*.ckpt\")" hydra.sweep.dir=$OUT/sweep
echo "== $OUT/sweep/summary.csv"
cat $OUT/sweep/summary.csv
