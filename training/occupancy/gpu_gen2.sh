#!/bin/bash
# Second train_gen.py sweep as run on one lent H100: 6 fine-tunes in parallel (3.6 min each) from the first sweep's
# chosen v6 (carried as .gpudata/occgen/v6.pt) or the shipped model, adding --marks/--dark. Results -> $OUT/gen2.tar.gz.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
M=${MIN:-3.6}
nvidia-smi -L || true
R=$OUT/gen2; mkdir -p $R
V6=../../.gpudata/occgen/v6.pt
C="--device ${DEV:-cuda} --threads 2 --minutes $M --gen-dir ../../.gpudata/occgen --extcars 0.3 --lr 1e-3"
run() { n=$1; shift; mkdir -p $R/$n; timeout 300 ${PY:-python3} train_gen.py $C --save $R/$n "$@" > $R/$n/log.txt 2>&1 & }
run w1 --init $V6 --marks 0.4 --dark 0.08 --seed 5
run w2 --init $V6 --marks 0.6 --dark 0.08 --seed 6
run w3 --init ../../.gpudata/occgen/old.pt --marks 0.4 --dark 0.08 --seed 5
run w4 --init $V6 --marks 0.4 --dark 0.08 --synth 0.6 --seed 7
run w5 --init $V6 --seed 5
run w6 --init $V6 --marks 0.4 --dark 0.08 --seed 8 --lr 5e-4
wait
for f in $R/*/log.txt; do echo "== $f"; grep -v -i warn $f | grep -E "^..:..:.. (step|final)|Error|error|Traceback" | tail -2; done
tar czf $OUT/gen2.tar.gz -C $OUT gen2 && rm -rf $R
