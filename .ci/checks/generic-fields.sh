#!/usr/bin/env bash
# Issue 2's check: generic (protocol-independent) session fields against
# Arkime's documents for the whole corpus; fails below 98%.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/debug/moonwire
[ -x "$bin" ] || cargo build -q -p moonwire
python3 ../shared/arkime-compat/score.py --pcaps ../shared/arkime-compat/pcaps \
  --run "$bin capture --tests -q -c ../shared/arkime-compat/config.test.ini -n test -r {pcap}" \
  --only '^(ipProtocol|ethertype|source\.|destination\.|client\.|server\.|network\.|tcpflags\.|tcpseq\.|initRTT|firstPacket|lastPacket|packetRange\.|length$|packetLen|packetPos|srcPayload8|dstPayload8|srcTTL|dstTTL|srcDscp|dstDscp|srcISNCnt|tcpSynValidated|tcpSynAckValidated|segmentCnt|totDataBytes|dot1q|dot1ad|vni|srcOuter|dstOuter|icmp\.)' \
  --min-fields 0.98 | tail -1
