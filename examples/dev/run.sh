#!/usr/bin/env bash
# Starts the local product: the Vipps simulator on :8090, the demo shop on :8081 and kasse on :8080
# (in-process store, built plugin).
# Ctrl-C stops all three: kasse drains its in-flight requests and logs that it stopped, and the script
# exits 0 (so `make run` ends without "Error"). Called by `make run`, which builds bin/ and plugin/build/
# first. The simulator logs a summary line per payment step; set SIM_VERBOSE=1 for every request.
set -euo pipefail
cd "$(dirname "$0")/../.."

SIM_ADDR=${SIM_ADDR:-127.0.0.1:8090}
./bin/vippssim -addr "$SIM_ADDR" -allow-http-loopback ${SIM_VERBOSE:+-v} &
sim=$!
./bin/demoshop -addr 127.0.0.1:8081 -kasse http://127.0.0.1:8080 -merchant demo &
shop=$!
# Under set -e a failing command in a trap decides the exit status: every one here may fail (a child
# already gone), so each ends in || true.
trap 'kill $sim $shop 2>/dev/null || true; wait $sim $shop 2>/dev/null || true' EXIT
# Ctrl-C reaches every process of the group; the shell only waits for kasse to finish draining.
trap ':' INT TERM

cat <<MSG

  kasse            http://127.0.0.1:8080   (API, callbacks, hooks, /healthz, /readyz)
  kasse operations http://127.0.0.1:9090   (/metrics, /readyz with reasons, /admin/v1 with the admin token)
  kasse console    http://127.0.0.1:9090/console/   (log in with the token demo-admin-token-not-secret)
  Vipps simulator  http://$SIM_ADDR   (eCom v2 API, landing page, force approve)
  demo shop        http://127.0.0.1:8081   (open it in a browser and buy a pair of socks)

  Try first (see README.md for the whole walk-through):
    curl -s -X POST http://127.0.0.1:8080/v1/checkouts \\
      -H 'Authorization: Bearer demo-api-key' -H 'Content-Type: application/json' \\
      --data @examples/checkout.json
  then open the "redirectUrl" it answers with in a browser.
    curl -s http://127.0.0.1:9090/admin/v1/plugins -H "Authorization: Bearer \$KASSE_DEMO_ADMIN_TOKEN"

MSG
status=0
./bin/kasse serve -config examples/kasse.yaml || status=$?
case $status in
0 | 130 | 143) exit 0 ;; # stopped by Ctrl-C or SIGTERM
*) exit "$status" ;;
esac
