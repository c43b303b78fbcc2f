#!/usr/bin/env bash
# The main job, run by `make demo`. It runs what Outpost can do today on the
# embedded default, with real results only; each capability adds its part here
# as it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin

echo "== Outpost demo =="
echo
echo "1. The benchmark record generator (bench/WORKLOADS.md) is deterministic:"
sum=$("$bin/outpost-bench" dump 2000 100000 | sha256sum | cut -d' ' -f1)
echo "   first 2000 records of the 100000 set hash to $sum"
if [[ $sum == 5e7ce8571894db4151f6d15824cd161f022dceff927ba69abf52752728a51dbe ]]; then
  echo "   (matches the published value)"
else
  echo "   DOES NOT match the published value" >&2
  exit 1
fi
echo
echo "2. Workload W1 on 20000 records: plain SQLite, then the encrypted vault, whose"
echo "   files are then searched for plaintext (the CHECK lines):"
"$bin/outpost-bench" w1 --records 20000 | grep -E '^(RESULT|CHECK)' |
  grep -E 'insert_rec_per_s|read_per_s|query_mean_us|db_bytes_per_record|CHECK' | sed 's/^/   /'
echo
echo "3. A worker's day on the SDK (examples/embedding/field_story.cpp): vault,"
echo "   child, cse-screening assessment, signed contact note, missing episode:"
"$bin/field-story"
echo
echo "Not yet in this build: sync between devices and outpost-server, and the"
echo "outpost-field app. 'make test' runs everything that exists."
echo "The demo keeps nothing: its vaults lived in temp folders, now removed."
echo "Run 'make demo' again at any time."
