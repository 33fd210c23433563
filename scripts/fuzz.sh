#!/usr/bin/env bash
# Builds the libFuzzer target for the envelope and header decoders with clang and runs it for
# a bounded time (PARLEY_FUZZ_SECONDS, default 30). Exits non-zero on any crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${PARLEY_FUZZ_SECONDS:-30}
out=build/fuzz
mkdir -p "$out/corpus"
cflags=$(pkg-config --cflags libzmq msgpack)
libs=$(pkg-config --libs libzmq msgpack)
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $cflags \
  tests/fuzz/fuzz_envelope.c proto/proto_codec.c proto/proto_reader.c proto/proto_envelope.c \
  -o "$out/fuzz_envelope" $libs
cp -n tests/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
"$out/fuzz_envelope" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  "$out/corpus" 2>"$out/fuzz.log" || { tail -50 "$out/fuzz.log"; exit 1; }
grep -E "stat::number_of_executed_units|Done" "$out/fuzz.log" | tail -2
