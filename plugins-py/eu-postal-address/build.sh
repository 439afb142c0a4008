#!/usr/bin/env sh
# Build eu_postal_address.wasm next to this script with componentize-py.
# COMPONENTIZE_PY: the componentize-py to use (default: the one on PATH).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
wit="$here/../../wit/v0.1"
"${COMPONENTIZE_PY:-componentize-py}" -d "$wit" -w address-type componentize app \
    -p "$here" -o "${OUT:-$here/eu_postal_address.wasm}"
