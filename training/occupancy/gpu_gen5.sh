#!/bin/bash
# Fifth train_gen.py sweep: 7 fine-tunes of the sweep-4 soup distilled again from its own test-time ensemble, most
# teachers also averaging views of the middle 80-85 % of the patch (fewer free bays called occupied). -> $OUT/gen5.tar.gz
SWEEP=gen5
source "$(dirname "$0")/gpu_common.sh"
run e1 $L --distill 0.5 --lr 3e-4 --seed 71
run e2 $L --distill 0.8 --teacher-inset 0.85 --lr 3e-4 --seed 72
run e3 $L --distill 0.5 --teacher-inset 0.8 --lr 3e-4 --seed 73
run e4 $H --distill 0.5 --teacher-inset 0.85 --lr 3e-4 --seed 74
run e5 $L --distill 0.8 --lr 3e-4 --seed 75
run e6 $L --distill 0.8 --teacher-inset 0.8 --lr 2e-4 --seed 76
run e7 $H --distill 0.8 --teacher-inset 0.85 --lr 3e-4 --seed 77
finish
