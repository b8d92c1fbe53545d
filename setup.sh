#!/usr/bin/env bash
# One entry point for a fresh machine.
#   bash setup.sh demo   install, then run the bundled baseline scenario end to end
#   bash setup.sh test   install, then run the whole test suite
#   bash setup.sh notebooks   install with JupyterLab, then open notebooks/ in it
# Finds a Python >= 3.12 by itself (PATH, then pyenv), builds .venv, installs v2gsim[dev].
set -euo pipefail
cd "$(dirname "$0")"

is_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
    local c
    for c in python3.13 python3.12 python3 python; do
        if command -v "$c" >/dev/null 2>&1 && is_ok "$c"; then command -v "$c"; return 0; fi
    done
    local roots=()
    command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root)")
    roots+=("$HOME/.pyenv" "/root/.pyenv" "/usr/local" "/opt/python")
    for r in "${roots[@]}"; do
        for c in "$r"/versions/3.1[2-9]*/bin/python3 "$r"/bin/python3.1[2-9]; do
            if [ -x "$c" ] && is_ok "$c"; then echo "$c"; return 0; fi
        done
    done
    return 1
}

if [ ! -x .venv/bin/python ] || ! is_ok .venv/bin/python; then
    PY=$(find_python) || { echo "setup.sh: no Python >= 3.12 found on PATH or under pyenv; install one (e.g. 'pyenv install 3.12') and rerun." >&2; exit 1; }
    echo "setup.sh: using $PY ($("$PY" --version 2>&1))"
    rm -rf .venv
    "$PY" -m venv .venv
fi
extras=dev
[ "${1:-demo}" = notebooks ] && extras=dev,notebooks
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"

case "${1:-demo}" in
    demo)
        # --overwrite: a second demo replaces the first one's result (and refuses anything else there)
        .venv/bin/v2gsim run scenarios/baseline_uncontrolled.yaml -o results/baseline_uncontrolled --overwrite ;;
    test)
        shift || true
        .venv/bin/python -m pytest -n 2 "$@" ;;
    notebooks)
        shift || true
        exec .venv/bin/jupyter lab notebooks/ "$@" ;;
    *)
        echo "usage: bash setup.sh [demo|test|notebooks]" >&2; exit 2 ;;
esac
