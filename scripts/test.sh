#!/usr/bin/env bash
# Run winback's whole test suite on a fresh machine: installs the one test-only tool it
# needs (moto's S3-compatible server, from PyPI), then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v moto_server >/dev/null 2>&1; then
    echo "installing moto[server] (an S3-compatible test server) from PyPI..."
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
fi
# pyenv installs console scripts behind shims that need a rehash.
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
cargo test "$@"
