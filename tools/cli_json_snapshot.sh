#!/usr/bin/env bash
# The CLI's `search --json` output on the demo library, for checking that a change keeps
# behaviour byte-identical: run it on two trees (e.g. `git worktree add /tmp/before REV`)
# and compare the files.
#
#   tools/cli_json_snapshot.sh REPO OUT [PYTHON]
#
# A copy of assets/demo with fixed modification times is indexed with the untrained tiny
# models in fp32 (the same vectors on every CPU), then a fixed set of queries (words,
# filters, sorting, paging, weights, and a photo, a sound and a video as the query) is run.
set -euo pipefail
REPO=$(cd "$1" && pwd); OUT=$2; PY=${3:-$REPO/.venv/bin/python}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
D=/tmp/trove-json-snapshot-demo  # a fixed path: it is in the output
rm -rf "$D"; cp -r "$REPO/assets/demo" "$D"
find "$D" -exec touch -h -d "2024-01-02 03:04:05" {} +
export TROVE_PRECISION=fp32 HF_HUB_OFFLINE=1 TROVE_DATA_DIR=$WORK/data
cd "$REPO"
"$PY" app.py index "$D" --model tiny-clip --audio-model tiny-clap --quiet > /dev/null
: > "$OUT"
q() {
    echo "## $*" >> "$OUT"
    "$PY" app.py search "$@" --json 2>/dev/null | sed "s#$WORK#DATA#g" >> "$OUT" || echo "rc=$?" >> "$OUT"
}
q "a cat"
q "a dog in the snow" -k 20
q "coffee" --kind image
q "invoice 2023"
q "rain" --kind audio
q "waves" --kind video
q "" --image "$D/cat.jpg"
q "x" --sort date -k 5
q "brick" --min-score 0.1
q "the" --offset 3 -k 4
q '"coffee cup" - "grass"'
q "" --audio "$D/sounds/bell.flac"
q "" --video "$D/videos/bouncing-ball.mp4"
rm -rf "$D"
sha256sum "$OUT"
