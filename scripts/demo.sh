#!/usr/bin/env bash
# The main job on the embedded defaults: the camera learns its normal from its own footage, then
# sample footage with an injected anomaly -> edge -> cloud (ingest + SmolLM2 explainer) -> MQTT
# (a real Mosquitto when installed) -> vau-alerts.
# Without Mosquitto, the cloud's alerts are printed from its log instead. The cloud also serves the
# review page; on a terminal the demo keeps it up until Enter (DEMO_NO_WAIT=1: stop at once).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-out/demo}
rm -rf "$OUT" && mkdir -p "$OUT"
free_port() { "$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== 1/4 a 24 s clip of vtest.avi with a camera tamper from 8 s to 16 s; the camera learns"
echo "        its normal from the rest of its footage (24 s to 79 s, no anomaly in it)"
"$BIN/vau-edge" make-clip --kind tamper --span 8 16 --seconds 24 --out "$OUT/clip.avi"
"$BIN/vau-edge" learn --source "$("$BIN/vau-models" path vtest.avi)" --start 24 \
  --out "$OUT/normality" --camera-id cam-0 --log-format text

MOSQUITTO=$(command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null || true)
CLOUD_PORT=$(free_port)
export VAU_CLOUD__EXPLAIN__WINDOW_WAIT_S=3
if [ -n "$MOSQUITTO" ]; then
  MQTT_PORT=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$MQTT_PORT" > "$OUT/mosquitto.conf"
  echo "== 2/4 Mosquitto on 127.0.0.1:$MQTT_PORT, vau-cloud on 127.0.0.1:$CLOUD_PORT"
  "$MOSQUITTO" -c "$OUT/mosquitto.conf" > "$OUT/mosquitto.log" 2>&1 & pids+=($!)
  export VAU_CLOUD__MQTT__HOST=127.0.0.1 VAU_CLOUD__MQTT__PORT=$MQTT_PORT
else
  echo "== 2/4 no Mosquitto here (apt-get install mosquitto): alerts are read from the cloud log"
fi
HTTP_PORT=$(free_port)
"$BIN/vau-cloud" serve --listen "127.0.0.1:$CLOUD_PORT" --data-dir "$OUT/cloud" \
  --http-port "$HTTP_PORT" > "$OUT/cloud.log" 2>&1 & pids+=($!)
echo "        review page: http://127.0.0.1:$HTTP_PORT/ (events appear there as the cloud gets them)"
sleep 1
if [ -n "$MOSQUITTO" ]; then
  "$BIN/vau-alerts" tail --broker "mqtt://127.0.0.1:$MQTT_PORT" > "$OUT/alerts.txt" & pids+=($!)
  tail -n +1 -f "$OUT/alerts.txt" & pids+=($!)  # show alerts as they arrive
fi
for _ in $(seq 100); do grep -q "explainer\|listening" "$OUT/cloud.log" 2>/dev/null && break; sleep 0.2; done

echo "== 3/4 vau-edge run on the clip, streaming to the cloud"
"$BIN/vau-edge" run --source "$OUT/clip.avi" --cloud "127.0.0.1:$CLOUD_PORT" \
  --data-dir "$OUT/edge" --device-id edge-demo --normality "$OUT/normality" \
  --jsonl "$OUT/edge.jsonl" --log-format text 2> "$OUT/edge.log"
tail -n 2 "$OUT/edge.log"

echo "== 4/4 waiting for the explanation (SmolLM2 on this CPU: a few seconds)"
for _ in $(seq 300); do
  if grep -q "EXPLAINED\|explanation {" "$OUT/alerts.txt" "$OUT/cloud.log" 2>/dev/null; then break; fi
  sleep 0.2
done
if [ -z "$MOSQUITTO" ]; then grep -E "vau.cloud.alerts" "$OUT/cloud.log" | sed 's/^.*INFO //'; fi
sleep 1
echo "== done; logs and data in $OUT"
echo "   review page: http://127.0.0.1:$HTTP_PORT/ (the event, its explanation, score curve and"
echo "   where it happened on the patch grid)"
if [ -t 0 ] && [ -z "${DEMO_NO_WAIT:-}" ]; then
  read -r -p "   press Enter to stop the cloud and the page " _ || true
fi
