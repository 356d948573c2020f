#!/usr/bin/env bash
# Chain the three stages: scrape posters, compute VGG-16 features, make the map.
# Every stage resumes, so running this again after an interruption continues.
#
# Settings (environment variables, with their defaults):
#   RANGE=1920-2016                       years to scrape
#   BASE_URL=http://www.impawards.com/    the poster archive
#   WEIGHTS=imagenet                      imagenet, random (tests only) or a weights file
#   N_SAMPLE=0                            posters on the map: 0 = every one; 3000 = the original's sample
#   DATA_DIR=data                         posters, thumbnails, posters.csv, features.h5
#   WEB_DIR=web                           where data.json and its assets go (the page is copied there too)
#   JOBS=4                                downloads in flight
#   REBUILD=0                             1: make the map in full even when $WEB_DIR/data.json exists (else an
#                                         existing map is updated: new posters join it, no other poster moves,
#                                         and stage 3 makes it in full by itself when an update cannot do)
#   METADATA=                             a CSV of more columns for the map (get_data_visu.py --metadata)
#   SCRAPE_ARGS, FEATURE_ARGS, VISU_ARGS  extra flags for each stage, e.g. VISU_ARGS="--grid"
#
# Example: RANGE=1995-1996 BASE_URL=http://127.0.0.1:8000/ WEIGHTS=random ./run-posters-cnn.sh
set -euo pipefail
cd "$(dirname "$0")"

RANGE="${RANGE:-1920-2016}"
BASE_URL="${BASE_URL:-http://www.impawards.com/}"
WEIGHTS="${WEIGHTS:-imagenet}"
N_SAMPLE="${N_SAMPLE:-0}"
DATA_DIR="${DATA_DIR:-data}"
WEB_DIR="${WEB_DIR:-web}"
JOBS="${JOBS:-4}"
REBUILD="${REBUILD:-0}"
METADATA="${METADATA:-}"
SCRAPE_ARGS="${SCRAPE_ARGS:-}"
FEATURE_ARGS="${FEATURE_ARGS:-}"
VISU_ARGS="${VISU_ARGS:-}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

step() { printf '\n== %s\n' "$*" >&2; }

step "1/3 posters: $RANGE from $BASE_URL into $DATA_DIR/"
# shellcheck disable=SC2086  # the *_ARGS variables hold several flags on purpose
"$PYTHON" get_posters.py --range "$RANGE" --base-url "$BASE_URL" --out-dir "$DATA_DIR" --jobs "$JOBS" $SCRAPE_ARGS

step "2/3 features: VGG-16 fc2 with --weights $WEIGHTS into $DATA_DIR/features.h5"
# shellcheck disable=SC2086
"$PYTHON" get_features_from_cnn.py -i "$DATA_DIR/posters.csv" -o "$DATA_DIR/features.h5" --weights "$WEIGHTS" \
  $FEATURE_ARGS

if [ "$N_SAMPLE" = 0 ]; then what="every poster"; else what="a sample of $N_SAMPLE posters"; fi
UPDATE=""
if [ -f "$WEB_DIR/data.json" ] && [ "$REBUILD" != 1 ]; then
  UPDATE="--update=auto"
  what="$what, updating the map there"
fi
MORE=()
if [ -n "$METADATA" ]; then MORE=(--metadata "$METADATA"); fi
step "3/3 map: $what into $WEB_DIR/data.json"
# shellcheck disable=SC2086
"$PYTHON" get_data_visu.py -i "$DATA_DIR/features.h5" --posters "$DATA_DIR/posters.csv" \
  -o "$WEB_DIR/data.json" --n-sample "$N_SAMPLE" $UPDATE "${MORE[@]}" $VISU_ARGS

step "done"
# Stage 3 put the page beside data.json and printed the command that serves it.
