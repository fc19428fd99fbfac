#!/bin/bash
# Third train_gen.py sweep (one lent H100, 16 cores): 7 fine-tunes of the shipped model in parallel with the free-bay
# look-alikes (--picto/--zebra/--kerb/--shade/--treeshade/--nbr) and weathered paint (--worn). Needs the pack_gen.py
# folder carried as target-occ/occgen. Results -> $OUT/gen3.tar.gz (checkpoints + logs).
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
M=${MIN:-7.5}
nvidia-smi -L || true
R=$OUT/gen3; mkdir -p $R
C="--device ${DEV:-cuda} --threads 2 --minutes $M --gen-dir ../../target-occ/occgen --init ../../models/occupancy.pt --extcars 0.3 --marks 0.4 --pale --eval-every 300 ${EXTRA:-}"
H="--dark 0.08 --picto 0.4 --zebra 0.15 --kerb 0.3 --shade 0.1 --nbr 0.4 --treeshade 0.2"
L="--dark 0.05 --picto 0.4 --zebra 0.1 --kerb 0.2 --shade 0.05 --nbr 0.25 --treeshade 0.2"
run() { n=$1; shift; mkdir -p $R/$n; timeout ${KILL:-530} ${PY:-python3} train_gen.py $C --save $R/$n "$@" > $R/$n/log.txt 2>&1 & }
run g1 $H --worn 0.4 --lr 5e-4 --seed 21
run g2 $H --worn 0.4 --lr 1e-3 --seed 22
run g3 $H --worn 0.6 --lr 5e-4 --synth 0.5 --seed 23
run g4 $L --worn 0.4 --lr 5e-4 --seed 24
run g5 $L --worn 0.4 --lr 3e-4 --seed 25
run g6 $H --worn 0.4 --lr 5e-4 --seed 26
run g7 $H --lr 5e-4 --seed 27
wait
for f in $R/*/log.txt; do echo "== $f"; grep -v -i warn $f | grep -E "^..:..:.. (step|final)|Error|error|Traceback" | tail -2; done
tar czf $OUT/gen3.tar.gz -C $OUT gen3 && rm -rf $R
