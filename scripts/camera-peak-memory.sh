#!/usr/bin/env bash
# Peak resident memory of keyhole-camera (size profile, this machine) recording and uploading one
# 10-second 1080p event clip: ffmpeg encodes a test pattern at 4 Mbit/s in real time as the
# camera's `command` source; the real server and the `keyhole` command run alongside on
# loopback. Needs ffmpeg, curl and python3. Prints the camera's VmHWM.
# THUMBNAIL=false measures without the event thumbnail (which decodes a 1080p picture);
# MOTION=true with motion detection, which decodes every picture (and makes the thumbnails).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
cargo build -q -p keyhole-server -p keyhole-client
cargo build -q --profile camera -p keyhole-camera --bin keyhole-camera
CAM=$T/camera/keyhole-camera
W=$(mktemp -d)
$T/debug/keyhole-server --insecure-http --listen 127.0.0.1:18600 --data-dir $W/server > $W/server.out 2> $W/server.log &
SERVER=$!
sleep 1
export KEYHOLE_PASSWORD="correct horse battery" KEYHOLE_PASSPHRASE="a long key store passphrase"
$T/debug/keyhole --store $W/owner.keys init --server http://127.0.0.1:18600 --user ana --phrase-file $W/phrase > /dev/null
cat > $W/camera.toml <<TOML
state_dir = "$W/camera"
control = "127.0.0.1:18601"
[source]
kind = "command"
fps = 15
command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=15", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-bf", "0", "-b:v", "4M", "-f", "h264", "-"]
[record]
mode = "events"
[clip]
pre_roll_s = 0.0
post_roll_s = 10.0
max_s = 10.0
thumbnail = ${THUMBNAIL:-true}
[motion]
enabled = ${MOTION:-false}
TOML
$T/debug/keyhole --store $W/owner.keys pair --name Door --no-qr --wait 60 > $W/pair.out &
PAIR=$!
for i in $(seq 50); do grep -q '^KH1-' $W/pair.out 2>/dev/null && break; sleep 0.2; done
grep '^KH1-' $W/pair.out | $CAM --config $W/camera.toml pair - > /dev/null
wait $PAIR
$CAM --config $W/camera.toml run 2> $W/camera.log &
CAMPID=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:18601/status > /dev/null && break; sleep 0.2; done
sleep 3
curl -sf -X POST http://127.0.0.1:18601/doorbell > /dev/null
for i in $(seq 300); do
  up=$(curl -sf http://127.0.0.1:18601/status | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["uploaded"], s["spool_objects"])')
  [ "$up" = "2 0" ] && break; sleep 0.2
done
echo "uploaded/spool: $up"
grep VmHWM /proc/$CAMPID/status
$T/debug/keyhole --store $W/owner.keys events Door | head -3
kill $CAMPID $SERVER; wait 2>/dev/null || true
rm -rf $W
