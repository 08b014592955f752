#!/usr/bin/env bash
# Installs what the browser tests need when it is missing: Debian's chromium (Playwright drives it;
# `playwright install` cannot download here) and an emoji font for faithful screenshots.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install chromium as root: apt-get install -y chromium" >&2; exit 1; }
    sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
