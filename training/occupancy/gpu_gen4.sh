#!/bin/bash
# Fourth train_gen.py sweep (the shipped model since): 7 fine-tunes of the sweep-2 soup distilled from its own
# test-time ensemble (--distill: the 8 flips/rotations, d4/d5 also a view of the middle 85 %) on sweep 3's
# look-alikes. -> $OUT/gen4.tar.gz
SWEEP=gen4
source "$(dirname "$0")/gpu_common.sh"
run d1 $L --distill 0.5 --lr 5e-4 --seed 51
run d2 $L --distill 0.8 --lr 5e-4 --seed 52
run d3 $H --worn 0.4 --distill 0.5 --lr 5e-4 --seed 53
run d4 $L --distill 0.5 --teacher-inset 0.85 --lr 5e-4 --seed 54
run d5 $L --distill 0.8 --teacher-inset 0.85 --lr 3e-4 --seed 55
run d6 $H --distill 0.5 --lr 3e-4 --seed 56
run d7 $L --distill 1.0 --lr 5e-4 --seed 57
finish
