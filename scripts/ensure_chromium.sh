#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the developer console's browser test
# (tests/e2e/test_console_browser.py), installed with apt-get when missing.
# Run by `make test` (and so by .ci/run, which runs as root with apt reachable).
# Never fails the build: where the browser cannot be installed it says so, and
# the browser test is skipped with the same reason; nothing else is.
set -uo pipefail

have_browser() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if have_browser; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: chromium and chromedriver are missing, and apt-get cannot install them here (not root?)." >&2
  echo "browser: the console's browser test will be skipped. To run it: sudo apt-get install chromium chromium-driver" >&2
  exit 0
fi
echo "browser: installing Debian's chromium and chromium-driver for the console's browser test ..."
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; then
  echo "browser: $(chromedriver --version 2>/dev/null | head -n 1)"
else
  echo "browser: apt-get could not install chromium and chromium-driver; the console's browser test will be skipped." >&2
fi
exit 0
