#!/usr/bin/env bash
# The main job, run by `make demo` (after install and build) and by ctest
# (examples.demo, with --cleanup). A scripted scenario on the embedded default:
# a central server and two field devices, every figure computed by the programs.
#
#   tools/demo.sh [--bin DIR] [--dir DIR] [--cleanup]
#
#   --bin DIR    where outpostctl, outpost-server and outpost-field are (build/bin)
#   --dir DIR    where the demo's data goes (default: a new folder under /tmp)
#   --cleanup    remove the data at the end (default: keep it to look at)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=build/bin
dir=""
cleanup=0
while [[ $# -gt 0 ]]; do
  case "$1" in
  --bin) bin=$2; shift 2 ;;
  --dir) dir=$2; shift 2 ;;
  --cleanup) cleanup=1; shift ;;
  -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "demo: unknown option $1 (see the top of tools/demo.sh)" >&2; exit 2 ;;
  esac
done
for program in outpostctl outpost-server outpost-field; do
  [[ -x $bin/$program ]] || { echo "demo: $bin/$program is missing; run 'make build'" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "demo: jq is missing; run tools/install-deps.sh" >&2; exit 1; }
bin=$(cd "$bin" && pwd)
[[ -n $dir ]] || dir=$(mktemp -d "${TMPDIR:-/tmp}/outpost-demo.XXXXXX")
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

server_pid=""
finish() {
  local status=$?
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 ]]; then
    echo "demo: FAILED (exit $status); the server's log is $dir/server.log" >&2
  elif [[ $cleanup -eq 1 ]]; then
    rm -rf "$dir"
  fi
}
trap finish EXIT
trap 'exit 130' INT TERM

data=$dir/server
ctl() { "$bin/outpostctl" --data "$data" "$@"; }
# Each device has its own folder and PIN; the PIN reaches outpost-field through
# OUTPOST_PIN here (a person types it at a no-echo prompt).
field_a() { OUTPOST_PIN=2468 "$bin/outpost-field" --vault "$dir/device-a" "$@"; }
field_b() { OUTPOST_PIN=1357 "$bin/outpost-field" --vault "$dir/device-b" "$@"; }
show() { sed 's/^/     | /'; }
step() { echo; echo "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }

echo "== Outpost demo: two outreach workers, one central server =="

step "1. The safeguarding hub sets up its server (outpostctl), a team and two workers:"
ctl init >/dev/null
ctl team add cse-team-north >/dev/null
ctl worker add worker-a --team cse-team-north >/dev/null
ctl worker add worker-b --team cse-team-north >/dev/null
ctl worker list | show
"$bin/outpost-server" --data "$data" --listen 127.0.0.1:0 >"$dir/server.out" 2>"$dir/server.log" &
server_pid=$!
for _ in $(seq 100); do
  grep -q listening "$dir/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || fail "outpost-server did not start (see $dir/server.log)"
  sleep 0.1
done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.out")
[[ -n $port ]] || fail "outpost-server did not say where it listens"
echo "   outpost-server listens on 127.0.0.1:$port (a free port the kernel picked)"

step "2. Each worker's device gets an encrypted vault and enrolls with a one-time code:"
for who in a b; do
  payload=$(ctl --json enroll "worker-$who" --ttl 1h --server "127.0.0.1:$port" | jq -r .payload)
  "field_$who" init --local-authority Leeds --police-force-area "West Yorkshire" >/dev/null
  "field_$who" enroll "$payload" | show
done

step "3. Worker A meets a young person; no signal. The record stays on the phone:"
child=$(field_a --json child add --name Jay --dob 2014-03-02 --care-status looked_after \
  --school "Park Road Academy" | jq -r .child)
echo "   recorded child $child"
field_a status | grep -E 'waiting|last sync' | show
echo "   back in signal, A syncs; B's device syncs too and receives Jay:"
field_a sync 2>/dev/null | show
field_b sync 2>/dev/null | show

step "4. Offline again, A runs the cse-screening assessment; the SDK computes the level and says why:"
assessment=$(field_a --json assessment start --child "$child" --participant Jay | jq -r .assessment)
field_a assessment answer "$assessment" dis_status=none ctx_looked_after=yes \
  pl_cars_unknown_adults=yes --recency pl_cars_unknown_adults=current \
  mon_unexplained_goods=yes --recency mon_unexplained_goods=within_6_months \
  "voice_child=says the older lads are his mates" \
  "voice_analysis=lifts and gifts from adults the family does not know" >/dev/null
field_a assessment submit "$assessment" --analysis "exploitation risk is escalating" | show
level=$(field_a --json assessment show "$assessment" | jq -r .computedLevel)
[[ $level == significant ]] || fail "expected the level significant, got $level"

step "5. A writes a contact note and signs it (signed notes are frozen; corrections are addenda):"
note=$(field_a --json note add --child "$child" --place "cafe near school" --seen-alone \
  --facts "Jay was collected by a car he did not know" \
  --child-words "he's my mate, he buys me stuff" | jq -r .note)
field_a note sign "$note" | show
field_a note addendum "$note" "The car was a silver hatchback." | show

step "6. Both workers, offline, record a different school for Jay:"
field_a child edit "$child" --school "Northfield College" | show
field_b child edit "$child" --school "Riverside Pupil Referral Unit" | show

step "7. Both sync. Nothing either typed is lost: the field is in conflict, for a person to review:"
field_a sync 2>/dev/null | show
field_b sync 2>/dev/null | show
field_a sync 2>/dev/null | show
echo "   on worker B's device:"
field_b conflicts list | show
echo "   at the hub:"
ctl conflicts list | show
echo "   worker B checks with the school and keeps A's value; the resolution syncs:"
field_b conflicts resolve "$child" school --text "Northfield College" | show
field_b sync 2>/dev/null | show
field_a sync 2>/dev/null | show
remaining=$(ctl --json conflicts list | jq length)
[[ $remaining -eq 0 ]] || fail "the hub still has $remaining records in conflict"
echo "   conflicts left at the hub: $remaining"

step "8. Jay went missing five days ago and came back four days ago; the return-home"
echo "   interview was due within 72 hours, and status says it is overdue:"
episode=$(field_a --json missing report --child "$child" --reported -5d \
  --last-seen-place "bus station" --police-ref WY-000123 | jq -r .episode)
field_a missing return "$episode" --at -4d --found-place "a flat in town" | show
field_a status | show
overdue=$(field_a --json status | jq .overdueInterviews)
[[ $overdue -eq 1 ]] || fail "expected one overdue return-home interview, status says $overdue"
field_a sync 2>/dev/null | show

step "9. The hub's export (outpostctl export) holds what the workers recorded:"
ctl export --format json --out "$dir/export.json"
jq -r '.records | group_by(.type)[] | "\(length) \(.[0].type)"' "$dir/export.json" | show
jq -r --arg id "$child" '.records[] | select(.id == $id) |
  "child \(.id): school \(.fields.school), in conflict: \(.inConflict)"' "$dir/export.json" | show

step "10. Each device's audit trail (every view, create, edit, sign and share) is a hash chain,"
echo "    with Ed25519-signed checkpoints every 64 events; each verifies end to end:"
field_a audit verify | show
field_b audit verify | show
echo "    and the hub's chain over every pushed batch and every administrative action"
echo "    (signed, and checked against each stored change) verifies too:"
ctl audit verify | show

step "11. Worker B's phone is lost. The hub revokes it; at its next sync it is wiped:"
device_b=$(field_b --json status | jq -r .device)
ctl revoke "$device_b" | show
if field_b sync >"$dir/revoked.out" 2>&1; then
  fail "the revoked device synced"
fi
show <"$dir/revoked.out"
[[ ! -e $dir/device-b/vault ]] || fail "the revoked device still has its vault"
echo "   device B's folder now holds no vault: $(ls "$dir/device-b" | tr '\n' ' ')"

echo
if [[ $cleanup -eq 1 ]]; then
  echo "The demo's data was in $dir (removed). Run it again with 'make demo'."
else
  echo "The data stays in $dir: the hub's server folder in server/ (outpostctl --data $dir/server"
  echo "devices), the export in export.json, worker A's device in device-a/ (PIN 2468:"
  echo "OUTPOST_PIN=2468 $bin/outpost-field --vault $dir/device-a status)."
  echo "Run it again with 'make demo' (a new folder each time); docs/getting-started.md does"
  echo "the same by hand."
fi
