#!/bin/bash
# Third train_gen.py sweep: 7 fine-tunes of the then shipped model (the sweep-2 soup) with the free-bay look-alikes
# (--picto/--zebra/--kerb/--shade/--treeshade/--nbr) and weathered paint (--worn). -> $OUT/gen3.tar.gz
SWEEP=gen3
source "$(dirname "$0")/gpu_common.sh"
run g1 $H --worn 0.4 --lr 5e-4 --seed 21
run g2 $H --worn 0.4 --lr 1e-3 --seed 22
run g3 $H --worn 0.6 --lr 5e-4 --synth 0.5 --seed 23
run g4 $L --worn 0.4 --lr 5e-4 --seed 24
run g5 $L --worn 0.4 --lr 3e-4 --seed 25
run g6 $H --worn 0.4 --lr 5e-4 --seed 26
run g7 $H --lr 5e-4 --seed 27
finish
