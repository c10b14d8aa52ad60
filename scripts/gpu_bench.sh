#!/usr/bin/env bash
# The whole benchmark on a GPU, for the day one is lent: installs the CUDA extra (skipped where JAX already
# sees a GPU), then writes into OUT (default: bench_gpu/):
#   devices.txt   what JAX sees
#   bench.json    mlpjax bench: the single model against the matmul ceiling, the batch/width sweep, and
#   bench.txt     models per second for K = 1, 4, 16, 64 (vmap and sequential) with the ratio to one model
#   train10.txt   mlpjax train, 10 epochs: wall time, epoch times, test accuracy
#   sweep/        mlpjax sweep, 5 seeds x 3 dropout x 2 lr, 5 epochs, strategy vmap (results.json, summary.md)
# Usage: scripts/gpu_bench.sh [OUT]   (MNIST from $MLPJAX_DATA_DIR, else the folder beside the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench_gpu}
DATA=${MLPJAX_DATA_DIR:-$(pwd)/../shared/data/mnist}
mkdir -p "$OUT"

if ! python -c "import jax, sys; sys.exit(0 if jax.devices()[0].platform == 'gpu' else 1)" 2>/dev/null; then
  pip install -e ".[cuda]"
fi
python -c "import jax; print(jax.__version__, jax.devices())" | tee "$OUT/devices.txt"
python -c "import jax, sys; sys.exit(0 if jax.devices()[0].platform == 'gpu' else 1)" \
  || { echo "JAX sees no GPU: see $OUT/devices.txt" >&2; exit 1; }

# 1. one model (epoch time, fraction of the float32 matmul ceiling, test accuracy) and models/s by K
mlpjax bench --data-dir "$DATA" --against jax --no-memory --rounds 5 --json > "$OUT/bench.json"
python -c "import json, sys; from mlpjax import bench; print(bench.format_report(json.load(open(sys.argv[1]))))" \
  "$OUT/bench.json" | tee "$OUT/bench.txt"

# 2. ten epochs, wall time of the whole command and of each epoch
TIMEFORMAT="wall seconds: %R"
{ time mlpjax train --data-dir "$DATA" --epochs 10 > "$OUT/train10.txt"; } 2>> "$OUT/train10.txt"
cat "$OUT/train10.txt"

# 3. the issue's sweep: 30 models as one vmapped program
rm -rf "$OUT/sweep"
{ time mlpjax sweep --data-dir "$DATA" --epochs 5 --seed 0,1,2,3,4 --dropout 0,0.2,0.5 --lr 0.001,0.0003 \
  --strategy vmap --output "$OUT/sweep" > "$OUT/sweep.txt"; } 2>> "$OUT/sweep.txt"
cat "$OUT/sweep.txt"
