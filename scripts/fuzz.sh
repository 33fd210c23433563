#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time
# (PARLEY_FUZZ_SECONDS, default 30). Exits non-zero on any crash.
#   fuzz_envelope     the envelope and header decoders (what the broker reads off ZeroMQ)
#   fuzz_text_inputs  JWTs, Jira's ADF documents and Connect query strings, base64url,
#                     schedules and zone names, chat text into JSON frames, sealed secrets
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${PARLEY_FUZZ_SECONDS:-30}
out=build/fuzz
mkdir -p "$out/corpus" "$out/corpus_text"
sanitize="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
clang $sanitize $(pkg-config --cflags libzmq msgpack) \
  tests/fuzz/fuzz_envelope.c proto/proto_codec.c proto/proto_reader.c proto/proto_envelope.c \
  -o "$out/fuzz_envelope" $(pkg-config --libs libzmq msgpack)
clang $sanitize $(pkg-config --cflags jansson libcrypto) \
  tests/fuzz/fuzz_text_inputs.c common/jwt.c common/adf.c common/connect_qsh.c \
  common/schedule.c common/tz_zone.c common/json_writer.c common/secrets.c \
  -o "$out/fuzz_text_inputs" $(pkg-config --libs jansson libcrypto)
cp -n tests/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
cp -n tests/fuzz/corpus_text/* "$out/corpus_text/" 2>/dev/null || true
# run NAME CORPUS MAX_LEN: one target; its log is $out/NAME.log
run() {
  "$out/$1" -max_total_time="$seconds" -max_len="$3" -print_final_stats=1 \
    -artifact_prefix="$out/$1-" "$out/$2" 2>"$out/$1.log" || { tail -50 "$out/$1.log"; exit 1; }
  echo "$1: $(grep -E "stat::number_of_executed_units" "$out/$1.log" | tail -1)"
}
run fuzz_envelope corpus 4096
run fuzz_text_inputs corpus_text 8192
