#!/usr/bin/env bash
# Runs a sanitizer build's tests (ctest arguments after the build directory) and fails if any
# sanitizer wrote a report, including from broker processes whose exit a test did not check.
set -euo pipefail
build=$1
shift
reports="$build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=1:abort_on_error=1:second_deadlock_stack=1"
status=0
ctest --test-dir "$build" --output-on-failure "$@" || status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "Sanitizer reports in $reports:"
  cat "$reports"/*
  exit 1
fi
exit "$status"
