#!/usr/bin/env bash
# Instructions one sealed 10-second 1080p clip costs on ARM, per suite: the `seal_clip` example
# (crates/keyhole-core/examples/seal_clip.rs) built with the camera profile for aarch64 and
# armv7, run under qemu-user with QEMU's own instruction-counting plugin (tests/plugin/insn.c),
# built from Debian's source of the installed qemu. One clip = count(1) - count(0) of the same
# deterministic program, for sealing alone and for the agent's whole path (recording to an
# encrypted scratch file, then sealing from it). The clip is ffmpeg's test pattern at 4 Mbit/s,
# 15 frames/s.
#
# Needs what .ci/run installs (cross toolchains, qemu-user, ffmpeg) plus libglib2.0-dev and
# network access to Debian's source archive. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
W=$T/arm-instructions
mkdir -p "$W"
W=$(cd "$W" && pwd)

QEMU_VERSION=$(dpkg-query -W -f '${Version}' qemu-user)
if [ ! -f "$W/libinsn.so" ]; then
  mkdir -p "$W/apt/lists/partial"
  printf 'deb-src http://deb.debian.org/debian bookworm main\ndeb-src http://deb.debian.org/debian-security bookworm-security main\n' > "$W/apt/sources.list"
  APT=(-q -o Dir::Etc::SourceList="$W/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$W/apt/lists")
  apt-get "${APT[@]}" update > /dev/null
  (cd "$W/apt" && apt-get "${APT[@]}" source --download-only "qemu=${QEMU_VERSION%+b*}" > /dev/null 2>&1)
  tar -xJf "$W"/apt/qemu_*.orig.tar.xz -C "$W" --wildcards '*/tests/plugin/insn.c' '*/include/qemu/qemu-plugin.h'
  SRC=$(echo "$W"/qemu-*/)
  gcc -O2 -shared -fPIC -I"$SRC/include/qemu" $(pkg-config --cflags glib-2.0) \
    "$SRC/tests/plugin/insn.c" -o "$W/libinsn.so" $(pkg-config --libs glib-2.0)
fi

CLIP=$W/clip-1080p-10s.mp4
if [ ! -f "$CLIP" ]; then
  ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=15 -t 10 \
    -c:v libx264 -preset ultrafast -g 15 -bf 0 -b:v 4M -movflags +faststart "$CLIP"
fi
BYTES=$(stat -c %s "$CLIP")

count() { # qemu cpu binary suite sysroot mode n
  local log=$W/insn.log
  "$1" -L "$5" -cpu "$2" -plugin "$W/libinsn.so,inline=on" -d plugin -D "$log" \
    "$3" "$6" "$CLIP" "$4" "$7" "$W" > /dev/null
  sed -n 's/^insns: //p' "$log"
}

per_clip() { # same arguments as count, without n
  echo $(( $(count "$@" 1) - $(count "$@" 0) ))
}

echo "| target (qemu CPU) | suite | sealing | per byte | recording + sealing (the agent) | per byte |"
echo "|---|---|---:|---:|---:|---:|"
for spec in "aarch64-unknown-linux-gnu qemu-aarch64 cortex-a53 /usr/aarch64-linux-gnu" \
            "armv7-unknown-linux-gnueabihf qemu-arm cortex-a7 /usr/arm-linux-gnueabihf"; do
  set -- $spec
  target=$1 qemu=$2 cpu=$3 sysroot=$4
  cargo build -q --profile camera --target "$target" -p keyhole-core --example seal_clip
  bin=$T/$target/camera/examples/seal_clip
  for suite in aes chacha; do
    seal=$(per_clip "$qemu" "$cpu" "$bin" "$suite" "$sysroot" seal)
    agent=$(per_clip "$qemu" "$cpu" "$bin" "$suite" "$sysroot" record)
    printf '| %s (%s) | %s | %d | %s | %d | %s |\n' "$target" "$cpu" "$suite" \
      "$seal" "$(awk -v p="$seal" -v b="$BYTES" 'BEGIN { printf "%.1f", p / b }')" \
      "$agent" "$(awk -v p="$agent" -v b="$BYTES" 'BEGIN { printf "%.1f", p / b }')"
  done
done
echo
echo "clip: $BYTES bytes ($CLIP)"
