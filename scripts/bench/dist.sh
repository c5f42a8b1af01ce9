#!/usr/bin/env bash
# 2 ranks of 1 thread against 1 rank of 2 threads: one epoch of the embedded run (resnet18, global batch 64).
K=${K:-target/release/kiln}  # built with: cargo build --release --features mpi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() { echo "== $1 (load $(cut -d' ' -f1 /proc/loadavg))"; shift; "$@" 2>&1 | tr '\r' '\n' | grep -oE "Epoch 0: train_loss.*|DDP over.*"; }
run "1 rank x 2 threads" env RAYON_NUM_THREADS=2 $K train --epochs 1 --output /tmp/bench --experiment one
run "mpirun 2 ranks x 1 thread, overlap" env RAYON_NUM_THREADS=1 mpirun --oversubscribe -np 2 -x RAYON_NUM_THREADS $K train --epochs 1 -b 32 --output /tmp/bench --experiment two
run "mpirun 2 ranks x 1 thread, reduce after backward" env RAYON_NUM_THREADS=1 KILN_DDP_OVERLAP=0 mpirun --oversubscribe -np 2 -x RAYON_NUM_THREADS -x KILN_DDP_OVERLAP $K train --epochs 1 -b 32 --output /tmp/bench --experiment two-sync
run "kiln launch 2 ranks x 1 thread, overlap" $K launch --nproc-per-node 2 --master-port 29810 -- train --epochs 1 -b 32 --output /tmp/bench --experiment launch
run "1 rank x 2 threads (again)" env RAYON_NUM_THREADS=2 $K train --epochs 1 --output /tmp/bench --experiment one-again
