#!/usr/bin/env bash
# Train the medium-1k model on a lent GPU for a fixed number of minutes and leave what the
# CPU side needs in $OUT: the weights in bfloat16 cut into 15 MB pieces (a lease returns
# files of at most 16 MiB), and the run's small files in one archive.  Run in the
# repository root of the lent machine, with the image's own python3 (torch, transformers,
# tokenizers): it tokenizes that machine's own Python, held-out packages left out as
# everywhere (training/corpus.py).  Resumes RUN when it holds a run.
#
#   OUT=/some/folder training/gpu_lease.sh MINUTES RUN [more ghostline train flags]
#
# Back on the CPU, the files that came back make a run folder's checkpoint again, to export
# (`ghostline export RUN/checkpoint DIR`) or to go on training from (`--init-from`):
#
#   training/gpu_lease.sh --unpack FILES_DIR RUN
set -euo pipefail
if [ "${1:-}" = --unpack ]; then
    files=${2:?folder of the files that came back}
    run=${3:?run folder to make}
    mkdir -p "$run"
    tar -C "$run" -xzf "$files/run.tgz"
    cat "$files"/weights.safetensors.part* > "$run/checkpoint/model.safetensors"
    echo "unpacked $run/checkpoint"
    exit 0
fi
minutes=${1:?minutes of training}
run=${2:?run folder}
shift 2
out=${OUT:?set OUT to the folder that goes back}
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=20
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
flags=(--max-minutes "$minutes")
[ -f "$run/train_state.pt" ] && flags+=(--resume)
command -v "${CXX:-g++}" >/dev/null && flags+=(--compile)
python3 -m training.cli train --preset medium-1k --tokenizer-from model/default --out "$run" "${flags[@]}" "$@" 2>&1 | tr '\r' '\n' | grep --line-buffered -v '^\s*$' \
    | tee "$out/train.log"
# The float weights as an export ships them (bfloat16, the tied head left out).
python3 -c 'import sys; from pathlib import Path; from model.export import write_float_weights
write_float_weights(Path(sys.argv[1]), Path(sys.argv[2]))' "$run/checkpoint" "$out"
split -b 15M -d "$out/model.safetensors" "$out/weights.safetensors.part"
rm "$out/model.safetensors"
tar -C "$run" -czf "$out/run.tgz" log.jsonl data/meta.json data/files.txt \
    $(cd "$run" && ls checkpoint | grep -v '^model.safetensors$' | sed 's|^|checkpoint/|')
ls -l "$out"
