#!/usr/bin/env bash
# The whole test suite (what `make test` and CI run): builds the release and the sanitizer
# (ASan + UBSan) binaries, runs the C unit tests on both, the fuzzers (scripts/fuzz.sh) for a
# bounded time, then the integration tests against real processes built with the sanitizers,
# and last the docker-compose stack built and run on podman with its end-to-end tests
# (scripts/compose.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

echo "== build (release and sanitizers)"
make -s -j"$(nproc)" all
make -s -j"$(nproc)" sanitize
echo "== C unit tests, release build"
build/bin/unit-tests
echo "== C unit tests, AddressSanitizer + UndefinedBehaviorSanitizer"
build/asan/bin/unit-tests
echo "== fuzzing the envelope decoders and the text parsers (bounded)"
scripts/fuzz.sh
echo "== integration tests (real broker and workers, sanitizer builds, loopback)"
PARLEY_BIN=build/asan/bin /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
echo "== the docker-compose stack on podman (images, compose config, end to end)"
scripts/compose.sh test
