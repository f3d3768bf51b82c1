#!/usr/bin/env bash
# The main job: set up, generate a small SynthWorld set, check it, and probe one of its videos.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-data/synthworld}
.venv/bin/duomo synth "$out" --videos "${DUOMO_DEMO_VIDEOS:-60}" --seed 0
.venv/bin/duomo data check "$out/manifest.jsonl"
.venv/bin/duomo probe "$(ls "$out"/videos/*.mp4 | head -n 1)"
