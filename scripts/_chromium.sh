# Sourced by scripts/test: the report tests open the HTML status page in a real
# headless Chromium (Debian's `chromium`). Installed here when it is missing and
# we may (root, apt-get available); otherwise those tests fail with a message
# saying so, unless PROVGIT_SKIP_BROWSER=1 is set explicitly.
if [ "${PROVGIT_SKIP_BROWSER:-}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: installing chromium for the status page tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "scripts/test: could not install chromium; the browser tests will fail" >&2
  else
    echo "scripts/test: chromium is missing (not root or no apt-get); the browser tests will fail" >&2
  fi
fi
