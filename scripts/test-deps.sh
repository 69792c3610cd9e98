#!/usr/bin/env bash
# The test suite against the lowest and the highest dependency versions that pyproject.toml
# declares, each in a venv of its own (.venv-deps-low/, .venv-deps-high/).
#
# low:  urllib3 1.26.20 (the newest 1.26 patch) and aiohttp 3.8.3, the lowest aiohttp that
#       installs on Python 3.11 as published (3.8.0-3.8.2 have no 3.11 wheels and their C
#       extensions do not compile on 3.11).
# high: the newest urllib3 < 3 and aiohttp < 4 on the index.
#
# Usage: scripts/test-deps.sh [low|high]...   (both by default); extra pytest arguments
# go in PYTEST_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOW=("urllib3==1.26.20" "aiohttp==3.8.3")
HIGH=("urllib3>=1.26,<3" "aiohttp>=3.8,<4")

run() {
    local name=$1
    shift
    local venv=".venv-deps-$name"
    local stamp="$venv/.installed"
    local want
    want="$(cat pyproject.toml) $*"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ "$name" = high ]; then
        test -x "$venv/bin/python" || "$PYTHON" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade "pip>=25.1"
        "$venv/bin/python" -m pip install --quiet --upgrade -e ".[async]" --group dev "$@"
        printf '%s' "$want" > "$stamp"
    fi
    echo "== $name: $("$venv/bin/python" -c 'import aiohttp, urllib3; print("urllib3", urllib3.__version__, "aiohttp", aiohttp.__version__)')"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pytest -W error -p no:cacheprovider -q ${PYTEST_ARGS:-}
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(low high)
status=0
for name in "${names[@]}"; do
    case $name in
        low) run low "${LOW[@]}" || status=1 ;;
        high) run high "${HIGH[@]}" || status=1 ;;
        *) echo "unknown set: $name (low or high)" >&2; exit 2 ;;
    esac
done
exit $status
