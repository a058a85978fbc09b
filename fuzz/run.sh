#!/usr/bin/env bash
# Fuzzes every keyhole-core parser for a short, fixed time and fails if any target crashes.
#
#   fuzz/run.sh                   every target, FUZZ_SECONDS (default 20) seconds each
#   fuzz/run.sh roster live       only these targets
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 20)
#   CARGO_TARGET_DIR  build directory (default /var/tmp/keyhole-fuzz-target, outside the clone)
#   FUZZ_SANITIZER    address (default) or none; see the note on sanitizers below
#   FUZZ_LOG_DIR      where each target's libFuzzer log goes (default $CARGO_TARGET_DIR/fuzz-logs)
#
# Steps: install cargo-fuzz if missing; write seed inputs (examples/make_seeds.rs makes valid,
# signed objects with the fixture keys; hex values in crates/keyhole-core/tests/vectors/ are
# added too); replay every saved crash under regressions/<target>/; fuzz each target.
#
# Sanitizer: the targets build and run with AddressSanitizer (cargo-fuzz's default). Only the
# Rust code is instrumented: aws-lc-sys (the C AEAD behind aws-lc-rs) is compiled by its own
# build script without -fsanitize, which links fine under ASan. keyhole-core forbids unsafe
# code, so ASan mostly guards the dependencies; if a toolchain or aws-lc-sys update ever breaks
# the ASan build, run with FUZZ_SANITIZER=none (panics, overflows and failed assertions, the
# bugs these targets look for, are still caught without a sanitizer).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
seconds="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-address}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/keyhole-fuzz-target}"
logs="${FUZZ_LOG_DIR:-$CARGO_TARGET_DIR/fuzz-logs}"
vectors="$root/crates/keyhole-core/tests/vectors"

# fuzz/rust-toolchain.toml selects nightly here; `+nightly` below says so explicitly too, so
# cargo-fuzz's inner cargo calls do not fall back to the root's pinned stable toolchain.
cd "$here"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "run.sh: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

fuzz() { cargo +nightly fuzz "$1" --fuzz-dir "$here" "${@:2}"; }

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(fuzz list)
fi
mkdir -p "$logs" "$here/corpus"

echo "== building ${#targets[@]} targets (sanitizer: $sanitizer)"
fuzz build --sanitizer "$sanitizer"

echo "== writing seeds"
cargo +nightly run --quiet --example make_seeds -- "$here/corpus"
if [ -d "$vectors" ]; then
    # Every hex value longer than 8 characters in a `key: value` line becomes a seed for every
    # target (each target ignores what it cannot parse); other values become seeds for the
    # targets that parse text.
    python3 - "$vectors" "$here/corpus" "${targets[@]}" <<'PY'
import hashlib, os, re, sys
vectors, corpus, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
text_targets = [t for t in targets if t in ("pairing_code", "recovery_phrase", "device_proof")]
is_hex = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
count = 0
for dirpath, _, files in sorted(os.walk(vectors)):
    for name in sorted(files):
        with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        for line in lines:
            key, sep, value = line.partition(":")
            value = value.strip().strip('"').strip("'")
            if not sep or not value or key.lstrip().startswith("#"):
                continue
            bare = value[2:] if value.lower().startswith("0x") else value
            if len(bare) > 8 and is_hex.match(bare):
                data, dest = bytes.fromhex(bare), targets
            else:
                data, dest = value.encode(), text_targets
            seed = "vector-" + hashlib.sha256(data).hexdigest()[:16]
            for t in dest:
                os.makedirs(os.path.join(corpus, t), exist_ok=True)
                with open(os.path.join(corpus, t, seed), "wb") as out:
                    out.write(data)
                count += 1
print(f"vectors: wrote {count} seed files from {vectors}")
PY
else
    echo "vectors: $vectors does not exist yet; using generated seeds only"
fi

failed=()
summary="$logs/summary.txt"
: >"$summary"

echo "== replaying saved crashes (regressions/)"
for t in "${targets[@]}"; do
    dir="$here/regressions/$t"
    [ -d "$dir" ] || continue
    mapfile -t inputs < <(find "$dir" -type f ! -name '*.md' | sort)
    [ "${#inputs[@]}" -gt 0 ] || continue
    if fuzz run --sanitizer "$sanitizer" "$t" "${inputs[@]}" \
        >"$logs/$t.regressions.log" 2>&1; then
        echo "  $t: ${#inputs[@]} saved input(s) pass"
    else
        echo "  $t: a saved input under regressions/$t still fails (log: $logs/$t.regressions.log)"
        grep -m1 -E "panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer" -A1 "$logs/$t.regressions.log" | sed 's/^/    /' || true
        failed+=("$t (regression)")
        printf '%-20s %s\n' "$t" "REGRESSION STILL FAILS" >>"$summary"
    fi
done

echo "== fuzzing each target for ${seconds}s"
total=0
for t in "${targets[@]}"; do
    log="$logs/$t.log"
    start=$(date +%s)
    rc=0
    fuzz run --sanitizer "$sanitizer" "$t" "$here/corpus/$t" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    execs=${execs:-0}
    total=$((total + execs))
    if [ "$rc" -eq 0 ]; then
        status=ok
    else
        status="CRASH (exit $rc)"
        failed+=("$t")
        artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/Test unit written to //' || true)
        echo "  $t: crashed; log: $log"
        grep -m1 -E "panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer" -A1 "$log" | sed 's/^/    /' || true
        if [ -n "$artifact" ]; then
            echo "    input: $artifact"
            echo "    keep it as a regression: mkdir -p fuzz/regressions/$t && cp '$artifact' fuzz/regressions/$t/"
        fi
    fi
    printf '%-20s %4ss %12s execs  %s\n' "$t" "$took" "$execs" "$status" | tee -a "$summary"
done
printf '%-20s %5s %12s execs\n' "total" "" "$total" | tee -a "$summary"

if [ "${#failed[@]}" -gt 0 ]; then
    echo "run.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run.sh: all ${#targets[@]} targets ran ${seconds}s without a crash"
