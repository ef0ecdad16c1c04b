#!/usr/bin/env bash
# Scores moonwire's session documents against Arkime's on the compatibility
# corpus and fails below the floors this branch reached: the share of
# compared fields that match (SCORE_FLOOR) and the number of files whose
# every field matches (FILES_FLOOR).
# Usage: .ci/checks/all-fields.sh [MOONWIRE_BINARY]   (default: target/debug/moonwire)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-./target/debug/moonwire}
CORPUS=${ARKIME_COMPAT:-../shared/arkime-compat}
FLOOR=${SCORE_FLOOR:-0.995}
FILES_FLOOR=${FILES_FLOOR:-124}
if [ ! -d "$CORPUS/pcaps" ]; then
    if [ -n "${CI:-}" ]; then
        echo "score: corpus $CORPUS not found" >&2
        exit 1
    fi
    echo "skipped: arkime-compat corpus not found at $CORPUS"
    exit 0
fi
if [ ! -x "$BIN" ]; then
    cargo build -p moonwire
fi
status=0
out=$(python3 "$CORPUS/score.py" --pcaps "$CORPUS/pcaps" \
    --run "$BIN capture --tests -q -c $CORPUS/config.test.ini -n test -r {pcap}" \
    --min-fields "$FLOOR" 2>/dev/null) || status=$?
summary=$(echo "$out" | tail -1)
echo "$summary"
if [ "$status" -ne 0 ]; then
    echo "score: fields matched below the floor $FLOOR (or the scorer failed)" >&2
    exit "$status"
fi
passing=$(echo "$summary" | sed -n 's/^files passing \([0-9]*\)\/.*/\1/p')
if [ -z "$passing" ] || [ "$passing" -lt "$FILES_FLOOR" ]; then
    echo "score: files passing ${passing:-?} is below the floor $FILES_FLOOR" >&2
    exit 1
fi
