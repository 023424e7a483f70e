#!/usr/bin/env bash
# Browser test of the built site (tests/site/test_site.py), run by .ci/run after `jupyter-book build`.
# Needs the book in book/_build/html and the `dev` extra (Playwright's Python package) in the active
# environment; the browser is Debian's Chromium (no browser download: Playwright drives /usr/bin/chromium).
# Screenshots (one per chapter) go to $MMC_TEACH_SCREENSHOTS, default screenshots/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f book/_build/html/index.html ]; then
    echo "site_test: no built site in book/_build/html; run 'jupyter-book build book/' first" >&2
    exit 1
fi

if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    echo "site_test: installing Chromium from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

export MMC_TEACH_SITE_TEST=1
export MMC_TEACH_CHROMIUM="${MMC_TEACH_CHROMIUM:-$(command -v chromium)}"
export MMC_TEACH_SCREENSHOTS="${MMC_TEACH_SCREENSHOTS:-$PWD/screenshots}"
pytest tests/site -q
