#!/bin/bash
# The train_gen.py sweep as run on one lent H100 (6 trainings in parallel, MIN=7 min each as run, checkpoints + logs -> $OUT/gen.tar.gz).
# Needs .gpudata/occgen (pack_gen.py) beside the checkout's files, plus .gpudata/occgen/old.pt = the finetune.py
# model that models/occupancy.pt held before issue 5 (git history; as run, it was models/occupancy.pt). Delete .gpudata after.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
M=${MIN:-6}
nvidia-smi -L || true
${PY:-python3} -c "import torch, PIL, numpy; print('torch', torch.__version__, 'pillow', PIL.__version__, 'numpy', numpy.__version__)"
R=$OUT/gen; mkdir -p $R
C="--device ${DEV:-cuda} --threads 2 --minutes $M --gen-dir ../../.gpudata/occgen"
run() { n=$1; shift; mkdir -p $R/$n; timeout 540 ${PY:-python3} train_gen.py $C --save $R/$n "$@" > $R/$n/log.txt 2>&1 & }
run v1 --seed 3
run v2 --seed 3 --extcars 0.3
run v3 --seed 3 --extcars 0.3 --synth 0.6
run v4 --seed 3 --topdown 0
run v5 --seed 4 --extcars 0.3
run v6 --seed 3 --extcars 0.3 --init ../../.gpudata/occgen/old.pt --lr 1e-3
wait
for f in $R/*/log.txt; do echo "== $f"; grep -v -i warn $f | grep -E "^..:..:.. (step|final)|Error|error|Traceback" | tail -3; done
tar czf $OUT/gen.tar.gz -C $OUT gen && rm -rf $R
