#!/usr/bin/env bash
# `cmake --install` lays out the binary, the unit, the example config and the docs where the unit
# expects them. Usage: install_test.sh BUILD_DIR SCRATCH_DIR
set -euo pipefail
build=$1
root=$2
rm -rf "$root"
DESTDIR="$root" cmake --install "$build" >/dev/null
unit=$(find "$root" -path '*/lib/systemd/system/gophermq.service')
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\) broker --config \([^ ]*\)$/\1 \2/p' "$unit")
read -r binary config <<<"$exec_start"
test -x "$root$binary" || { echo "ExecStart binary $binary not installed"; exit 1; }
test -f "$root$config" || { echo "config $config not installed"; exit 1; }
env_file=$(sed -n 's/^EnvironmentFile=-\(.*\)$/\1/p' "$unit")
test -f "$root$env_file" || { echo "environment file $env_file not installed"; exit 1; }
for doc in README.md api.md operations.md; do
  find "$root" -path "*/share/doc/gophermq/$doc" | grep -q . || { echo "doc $doc not installed"; exit 1; }
done
"$root$binary" --version >/dev/null
echo "installed: $binary, $unit, $config, $env_file"
