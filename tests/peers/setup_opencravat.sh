#!/usr/bin/env bash
# Create (once) a separate venv holding the real OpenCRAVAT server used as a test peer.
#   usage: tests/peers/setup_opencravat.sh VENV_DIR
# Idempotent: a stamp file inside VENV_DIR records the pinned versions; when it matches,
# nothing is done. Needs only PyPI.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 VENV_DIR" >&2
    exit 2
fi

VENV_DIR=$1
PYTHON=${PYTHON:-python3}
OC_VERSION=3.2.4
OC_MULTIUSER_VERSION=2.12.1
PINS="open-cravat==${OC_VERSION} open-cravat-multiuser==${OC_MULTIUSER_VERSION}"
STAMP="${VENV_DIR}/.opencravat-installed"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS" ] && [ -x "${VENV_DIR}/bin/oc" ]; then
    exit 0
fi

if [ ! -x "${VENV_DIR}/bin/python" ]; then
    "$PYTHON" -m venv "$VENV_DIR"
fi
# shellcheck disable=SC2086
"${VENV_DIR}/bin/python" -m pip install --quiet --disable-pip-version-check $PINS
"${VENV_DIR}/bin/oc" version >/dev/null
printf '%s' "$PINS" > "$STAMP"
echo "OpenCRAVAT test peer installed in ${VENV_DIR} (${PINS})"
