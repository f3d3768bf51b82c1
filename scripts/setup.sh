#!/usr/bin/env bash
# Set-up for a fresh machine, safe to re-run: system packages, a virtual environment in .venv,
# and Duomo installed into it (editable) with the extras named in $DUOMO_EXTRAS (default: dev).
set -euo pipefail
cd "$(dirname "$0")/.."

# ffmpeg: only the benchmarks use the command-line tool (as the baseline to beat);
# Duomo itself reads and writes video through PyAV's bundled FFmpeg libraries.
# espeak-ng: the espeak-ng voices of duomo.speech.tts ("en", "es", "fr", ...), run as a program.
# chromium: the headless browser the web page tests drive through Playwright (tests/service/test_page.py).
APT_PACKAGES=(ffmpeg espeak-ng chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Java: METEOR and the PTB tokenizer of the caption metrics (pycocoevalcap) run on it.
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: warning: ${missing[*]} not installed and not root; benchmarks, METEOR, the espeak-ng voices and the browser tests need them" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras=${DUOMO_EXTRAS:-dev}
# Re-install only when the project's dependencies changed since the last set-up.
stamp=".venv/.duomo-setup-$(sha1sum pyproject.toml | cut -c1-12)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[${extras}]"
  touch "$stamp"
fi
