#!/bin/sh
# Lints docs/openapi.yaml with Redocly's CLI: the OpenAPI 3.1 rules and its recommended set,
# warnings as errors (redocly.yaml beside this script).
# The CLI is installed once, pinned, into CACHE_DIR under the build tree, never globally; later
# runs use it without the network. Skips (77) only when Node.js is not installed at all.
#
# usage: lint.sh CACHE_DIR OPENAPI_YAML
set -eu
cache_dir=$1
spec=$2
# The last release whose engines ask for no more than Debian 12's nodejs 18 and npm 9.
version=1.25.15

if ! command -v node >/dev/null 2>&1; then
  echo "node is not installed (make test-deps installs Debian's nodejs and npm): skipped"
  exit 77
fi
redocly="$cache_dir/node_modules/.bin/redocly"
if [ ! -x "$redocly" ] || [ "$(cat "$cache_dir/version" 2>/dev/null)" != "$version" ]; then
  mkdir -p "$cache_dir"
  npm install --prefix "$cache_dir" --no-audit --no-fund --no-save --loglevel=error \
    "@redocly/cli@$version"
  echo "$version" >"$cache_dir/version"
fi
exec "$redocly" lint --config "$(dirname "$0")/redocly.yaml" --format=stylish "$spec"
