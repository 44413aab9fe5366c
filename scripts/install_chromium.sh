#!/bin/sh
# Ensure a headless Chromium for the Playwright browser tests.
# Debian/Ubuntu: the distribution's `chromium` package (Playwright's own browser
# download cannot be relied on). macOS: Google Chrome or Chromium must be installed;
# set ALPHASTREAM_CHROMIUM to its binary if it is not found automatically.
set -e
for candidate in "$ALPHASTREAM_CHROMIUM" /usr/bin/chromium /usr/bin/chromium-browser \
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" \
    "/Applications/Chromium.app/Contents/MacOS/Chromium"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "chromium: $candidate"
        exit 0
    fi
done
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing Debian's chromium with apt-get (needs root)"
    # another apt/dpkg process (unattended upgrades, a parallel job) may hold the lock: wait for it
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
    exit 0
fi
echo "No Chromium found: install Google Chrome/Chromium or set ALPHASTREAM_CHROMIUM" >&2
exit 1
