#!/usr/bin/env bash
# The main job: set up; generate a SynthWorld set and check it; train a video-QA model on it for a
# few minutes; score it on the test split; answer a question about one of its videos.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-data/synthworld}
run=${DUOMO_DEMO_RUN:-runs/demo-qa}
.venv/bin/duomo synth "$out" --videos "${DUOMO_DEMO_VIDEOS:-400}" --seed 0
.venv/bin/duomo data check "$out/manifest.jsonl"
video=$(ls "$out"/videos/*.mp4 | head -n 1)
.venv/bin/duomo probe "$video"
rm -rf "$run"
.venv/bin/duomo train qa --data "$out/manifest.jsonl" --out "$run" \
  --epochs "${DUOMO_DEMO_EPOCHS:-6}" --max-minutes "${DUOMO_DEMO_MINUTES:-4}"
.venv/bin/duomo eval "$run" --data "$out/manifest.jsonl" --split test
.venv/bin/duomo predict "$run" "$video" --question "how many objects are there?"
