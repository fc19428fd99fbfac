#!/bin/bash
# The second GPU sweep as run (shipped checkpoints: occ64s -> models/occupancy.pt, malex -> models/malexnet.pt).
# Needs .gpudata/A (copy of CNRPark camera A) and .gpudata/pklot/{warp,bbox} (pklot_crops.py) carried to the GPU box.
# GPU sweep: 4 trainings in parallel, checkpoints + logs to $OUT
cd training/occupancy
export PYTHONUNBUFFERED=1
nvidia-smi -L
C="--cnr-dir ../../.gpudata/A --pklot-dir ../../.gpudata/pklot --device cuda --train-only --threads 4"
timeout 520 python3 train.py --only occnet $C --epochs-occnet 80 --synth 0.25 --seed 2 --save $OUT/occ64s > $OUT/occ64s.log 2>&1 &
timeout 520 python3 train.py --only occnet $C --epochs-occnet 80 --synth 0.4 --save $OUT/occ64s4 > $OUT/occ64s4.log 2>&1 &
timeout 520 python3 train.py --only occnet $C --epochs-occnet 80 --synth 0.25 --width 16,32,64,96,128 --save $OUT/occ64w > $OUT/occ64w.log 2>&1 &
timeout 520 python3 train.py --only malexnet $C --epochs-malexnet 60 --synth 0.25 --save $OUT/malex > $OUT/malex.log 2>&1 &
wait
for f in $OUT/*.log; do echo "== $f"; grep -v -i warn $f | grep -E "epoch|Error|error" | tail -4; done
