#!/usr/bin/env bash
# Run winback's whole test suite on a fresh machine: installs the test-only tools it needs
# (moto's S3-compatible server from PyPI into a virtual environment; Debian's chromium to
# render the HTML report), then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v moto_server >/dev/null 2>&1; then
    echo "installing moto[server] (an S3-compatible test server) into a Python virtual environment..."
    # shellcheck source=scripts/python-env.sh
    source scripts/python-env.sh 'moto[server]'
fi
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian) for the report test..."
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
cargo test "$@"
