#!/usr/bin/env bash
# Quick start: install what is missing, build, and run flowrelay in the foreground
# with the example config (or $FLOWRELAY_CONFIG). Extra arguments go to `flowrelay run`.
#
#   ./scripts/quickstart.sh
#   FLOWRELAY_CONFIG=/path/to/my.yaml ./scripts/quickstart.sh
set -euo pipefail

cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

config="${FLOWRELAY_CONFIG:-config/flowrelay.yaml}"
if [ ! -f "$config" ]; then
  echo "quickstart: config file not found: $config (relative paths are taken from $(pwd))" >&2
  exit 1
fi
# exec: flowrelay becomes this process, so Ctrl-C and SIGTERM/SIGHUP reach it directly.
exec node bin/flowrelay run -c "$config" "$@"
