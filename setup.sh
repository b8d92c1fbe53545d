#!/usr/bin/env bash
# One entry point for a fresh machine.
#   bash setup.sh demo   install, then run the bundled baseline scenario end to end
#   bash setup.sh test   install (and Debian's chromium for the browser tests), then run the whole test suite
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

# The browser tests drive Debian's Chromium through Playwright (Playwright cannot download its
# own browser here); the CJK font lets the page's Chinese names render in screenshots.
BROWSER_PACKAGES="chromium fonts-wqy-microhei"
browser_ready() {
    [ -x /usr/bin/chromium ] || return 1
    command -v dpkg-query >/dev/null 2>&1 || return 0  # not Debian: take the chromium that is there
    local p
    for p in $BROWSER_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || return 1
    done
}
install_browser() {
    browser_ready && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: the browser tests need Debian's packages $BROWSER_PACKAGES (/usr/bin/chromium);" \
             "install them as root ('apt-get install $BROWSER_PACKAGES') and rerun" >&2
        exit 1
    fi
    echo "setup.sh: installing $BROWSER_PACKAGES for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 $BROWSER_PACKAGES >/dev/null
    browser_ready || { echo "setup.sh: /usr/bin/chromium is still missing after apt-get install" >&2; exit 1; }
}

case "${1:-demo}" in
    demo)
        # --overwrite: a second demo replaces the first one's result (and refuses anything else there)
        .venv/bin/v2gsim run scenarios/baseline_uncontrolled.yaml -o results/baseline_uncontrolled --overwrite ;;
    test)
        shift || true
        install_browser
        .venv/bin/python -m pytest -n 2 "$@" ;;
    notebooks)
        shift || true
        exec .venv/bin/jupyter lab notebooks/ "$@" ;;
    *)
        echo "usage: bash setup.sh [demo|test|notebooks]" >&2; exit 2 ;;
esac
