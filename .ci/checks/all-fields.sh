#!/usr/bin/env bash
# Scores moonwire's session documents against Arkime's on the compatibility
# corpus and fails below the field-match floor this branch reached.
# Usage: .ci/checks/all-fields.sh [MOONWIRE_BINARY]   (default: target/debug/moonwire)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-./target/debug/moonwire}
CORPUS=${ARKIME_COMPAT:-../shared/arkime-compat}
FLOOR=${SCORE_FLOOR:-0.975}
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
python3 "$CORPUS/score.py" --pcaps "$CORPUS/pcaps" \
    --run "$BIN capture --tests -q -c $CORPUS/config.test.ini -n test -r {pcap}" \
    --min-fields "$FLOOR" | tail -1
