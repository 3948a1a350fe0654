#!/usr/bin/env bash
# The full benchmark on a lent GPU machine in one call of the device tool (after benchmarks/gpu/pack.sh):
#   1. the environment; 2. the lab's cost table (benchmarks/cost_lab.py: the kinds taking turns, then rounds), the
#   GPU to itself (COST_SECONDS=0 skips it), then a profile of each method's step (benchmarks/analysis/
#   step_profile.py, to $OUT/profile.log); 3. the grids in $GRIDS (benchmarks/grids/*.yaml; default: full-long,
#   full-long-smart-teacher, full, full-pertask), JOBS runs at once (under CUDA MPS when it starts, so their
#   small kernels overlap), starting from the committed results (runs done with the current settings are
#   skipped) and stopped at the deadline: finished runs are kept and a later call resumes; 4. the results tarred
#   to $OUT/results.tgz. Here: unpack the hardware's folder into benchmarks/results/ and run
#   `python benchmarks/report.py`. Timings of earlier calls: benchmarks/results/cuda-*/notes.md.
set -u
START=$(date +%s)
BUDGET=${BUDGET:-500}   # seconds from start to the tarball
OUT=${OUT:-/tmp/advlm-gpu-out}
RESULTS=${RESULTS:-/tmp/advlm-results}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
JOBS=${JOBS:-14}
mkdir -p "$OUT" "$RESULTS"
cp -rn benchmarks/results/. "$RESULTS"/  # the committed runs: the grids resume from them (-n: a second call on
                                        # the same warm machine keeps the first call's runs)
export PYTHONPATH=$PWD/src:$PWD/.gpu/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export ADVLM_MODEL=$PWD/.gpu/model ADVLM_DATA_DIR=$PWD/.gpu/data ADVLM_GIT_COMMIT=$(cat .gpu/COMMIT)
left() { echo $((START + BUDGET - $(date +%s) - ${1:-0})); }

{ nvidia-smi || true; "$PY" -c "import torch, transformers as t; print('torch', torch.__version__, 'transformers', t.__version__, 'cuda', torch.cuda.is_available())"; } 2>&1 | tee "$OUT/env.log"

# The cost phase wants the GPU to itself: stop the MPS daemon an earlier call on this warm machine left running
if [ "${COST_SECONDS:-230}" -gt 0 ] && command -v nvidia-cuda-mps-control >/dev/null; then
  echo quit | CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe nvidia-cuda-mps-control 2>/dev/null && sleep 2
fi
[ "${COST_SECONDS:-230}" -gt 0 ] && timeout "${COST_SECONDS:-230}" "$PY" benchmarks/cost_lab.py --device "$DEVICE" \
  --results "$RESULTS" ${COST_STEPS:+--steps $COST_STEPS} 2>&1 | tee "$OUT/cost.log"
# Where each method's step time goes on the GPU (kernel time and launches against wall time, by torch's profiler),
# for the overhead target's "why": about 30 s, first call only (PROFILE_SECONDS=0 skips it)
[ "${COST_SECONDS:-230}" -gt 0 ] && [ "${PROFILE_SECONDS:-60}" -gt 0 ] && timeout "${PROFILE_SECONDS:-60}" "$PY" \
  benchmarks/analysis/step_profile.py --device "$DEVICE" --batch-size 32 --turns 5 --top 6 > "$OUT/profile.log" 2>&1

if [ "${MPS:-1}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
  if nvidia-cuda-mps-control -d && timeout 30 "$PY" -c "import torch; torch.ones(1, device='cuda').sum().item(); print('MPS on')"; then :
  else
    echo quit | nvidia-cuda-mps-control || true
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    echo "MPS off"
  fi
fi 2>&1 | tee "$OUT/mps.log"
grep -q "MPS on" "$OUT/mps.log" && export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log

snapshot() { tar czf "$OUT/partial.tgz" -C "$RESULTS" . && mv "$OUT/partial.tgz" "$OUT/results.tgz"; }
(while sleep 40; do snapshot; done) & SNAPSHOTS=$!  # if the call itself is cut short, the last snapshot comes back
for grid in ${GRIDS:-full-long full-long-smart-teacher full full-pertask}; do
  [ "$(left 20)" -gt 10 ] || break
  echo "grid $grid: $(left 20) s left"
  timeout "$(left 20)" "$PY" -m advlm bench --grid "$grid" --skip-cost --device "$DEVICE" --jobs "$JOBS" \
    --results "$RESULTS" --docs "$RESULTS/benchmarks.md" 2>&1 | tee -a "$OUT/grid.log"
done
echo "grids stopped after $(( $(date +%s) - START )) s; runs: $(ls "$RESULTS"/cuda-*/runs/*/*.json 2>/dev/null | wc -l)" | tee -a "$OUT/grid.log"
kill $SNAPSHOTS 2>/dev/null; snapshot
