#!/usr/bin/env bash
# GPU readiness check (docs/PERFORMANCE.md, "GPU check"): prints one JSON line per configuration.
#
#   scripts/gpu_check.sh            # cuda when torch sees a GPU, else the CPU branch
#   scripts/gpu_check.sh cuda       # concat + cross_attention, synthetic 7,400 samples, fp32/bf16/fp16/compile
#   scripts/gpu_check.sh cpu        # tiny: concat, 400 samples, fp32/bf16 (a few seconds; CI runs it)
#
# Each line: samples/s, step time, host syncs per step / epoch / at epoch end, peak memory
# (mmbench bench --numerics, see mmbench.tools.bench_device). When this mmbench has
# `bench --seeds` (vectorised seeds), one more line per run holds that report under "report".
# MMBENCH and PYTHON name the commands to use (default: mmbench, python). Budget: < 5 minutes on a GPU.
set -euo pipefail

MMBENCH=${MMBENCH:-mmbench}
PYTHON=${PYTHON:-python}
DEVICE=${1:-auto}
if [ "$DEVICE" = auto ]; then
  DEVICE=$($PYTHON -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
fi

case "$DEVICE" in
  cuda*)
    FUSIONS=concat,cross_attention
    NUMERICS=fp32,bf16,fp16,compile
    EPOCHS=3
    SIZE=(--set data.n_samples=7400)
    ;;
  cpu)
    FUSIONS=concat
    NUMERICS=fp32,bf16
    EPOCHS=1
    SIZE=(--set data.n_samples=400 --set train.batch_size=32)
    ;;
  *)
    echo "gpu_check.sh: device must be cuda, cuda:N or cpu, got '$DEVICE'" >&2
    exit 2
    ;;
esac

# One JSON document in, one line per configuration out.
LINES='
import json, sys
report = json.load(sys.stdin)
env = report["environment"]
for row in report["device_check"]:
    print(json.dumps({**row, "dataset": report["dataset"], "torch": env["torch"], "date": report["date"]}))
'

$MMBENCH bench --device "$DEVICE" --fusion "$FUSIONS" --numerics "$NUMERICS" --max-epochs "$EPOCHS" \
  --no-cli --format json "${SIZE[@]}" | $PYTHON -c "$LINES"

if $MMBENCH bench --help 2>/dev/null | grep -q -- "--seeds"; then
  $MMBENCH bench --device "$DEVICE" --fusion "$FUSIONS" --seeds 0-4 --max-epochs "$EPOCHS" \
    --no-cli --format json "${SIZE[@]}" \
    | $PYTHON -c 'import json, sys; print(json.dumps({"config": "vectorised_seeds", "report": json.load(sys.stdin)}))'
fi
