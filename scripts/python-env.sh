#!/usr/bin/env bash
# Source this: puts a Python virtual environment with the given PyPI packages first on PATH.
# A virtual environment, because a Debian Python refuses `pip install` outside one (PEP 668).
# Usage: source scripts/python-env.sh 'moto[server]' duckdb ...
venv="${WINBACK_VENV:-$HOME/.cache/winback-venv}"
if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
        echo "python3 -m venv failed: installing python3-venv (Debian)..."
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
export PATH="$venv/bin:$PATH"
