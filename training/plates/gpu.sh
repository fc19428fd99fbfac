#!/bin/bash
# Both plate models at once on a lent GPU machine (16 cores: data workers split between them).
# Needs .gpudata/plates.pkl + .gpudata/fonts (pack.py) carried along. Checkpoints and logs go to $OUT;
# ONNX export happens here too when the machine has the onnx package, else locally with --export-only.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 VALET_PLATES_PACK=../../.gpudata/plates.pkl VALET_FONT_DIR=../../.gpudata/fonts
MIN=${MIN:-6.5}
nvidia-smi -L
python3 -c "import torch, PIL, numpy; print('torch', torch.__version__, 'pillow', PIL.__version__)"
mkdir -p "$OUT/ocr" "$OUT/det"
timeout 520 python3 train_ocr.py --device cuda --minutes "$MIN" --batch 256 --workers 6 --out "$OUT/ocr" > "$OUT/ocr.log" 2>&1 &
timeout 520 python3 train_detector.py --device cuda --minutes "$MIN" --batch 32 --workers 9 --out "$OUT/det" > "$OUT/det.log" 2>&1 &
wait
for f in "$OUT"/*.log; do echo "== $f"; grep -v -i warn "$f" | grep -E "^step|Error|error|Traceback" | tail -6; done
