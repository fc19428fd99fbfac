# Sourced by gpu_gen3.sh and gpu_gen4.sh (set SWEEP first): the shared job line of a sweep of train_gen.py fine-tunes
# of the shipped model run in parallel on one lent GPU box (16 cores). Needs the pack_gen.py folder carried as
# target-occ/occgen; `run NAME ARGS...` starts one job, `finish` waits and packs checkpoints + logs into
# $OUT/$SWEEP.tar.gz. INIT (the checkpoint to fine-tune, default models/occupancy.pt), MIN (minutes per job), KILL (hard stop, s), EXTRA (more arguments for every job) override.
cd "$(dirname "${BASH_SOURCE[0]}")"
export PYTHONUNBUFFERED=1
nvidia-smi -L || true
R=$OUT/$SWEEP; mkdir -p "$R"
C="--device ${DEV:-cuda} --threads 2 --minutes ${MIN:-7.5} --gen-dir ../../target-occ/occgen --init ${INIT:-../../models/occupancy.pt} --extcars 0.3 --marks 0.4 --pale --eval-every 300 ${EXTRA:-}"
H="--dark 0.08 --picto 0.4 --zebra 0.15 --kerb 0.3 --shade 0.1 --nbr 0.4 --treeshade 0.2"   # strong look-alike mix
L="--dark 0.05 --picto 0.4 --zebra 0.1 --kerb 0.2 --shade 0.05 --nbr 0.25 --treeshade 0.2"  # milder mix
run() { n=$1; shift; mkdir -p "$R/$n"; timeout "${KILL:-530}" ${PY:-python3} train_gen.py $C --save "$R/$n" "$@" > "$R/$n/log.txt" 2>&1 & }
finish() {
    wait
    for f in "$R"/*/log.txt; do echo "== $f"; grep -v -i warn "$f" | grep -E "^..:..:.. (step|final)|Error|error|Traceback" | tail -2; done
    tar czf "$OUT/$SWEEP.tar.gz" -C "$OUT" "$SWEEP" && rm -rf "$R"
}
