# Sourced by scripts/test: the directory driver tests start a throwaway OpenLDAP
# slapd (Debian's `slapd`) and edit it out of band with `ldapmodify` (`ldap-utils`).
# Installed here when missing and we may (root, apt-get available); otherwise
# those tests fail with a message saying so. The package's own service is never
# started: the tests run their own slapd on a loopback port.
if ! command -v slapd >/dev/null 2>&1 && [ ! -x /usr/sbin/slapd ] \
  || ! command -v ldapmodify >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: installing slapd and ldap-utils for the directory driver tests" >&2
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null \
      || echo "scripts/test: could not install slapd/ldap-utils; the directory tests will fail" >&2
  else
    echo "scripts/test: slapd or ldap-utils is missing (not root or no apt-get); the directory tests will fail" >&2
  fi
fi
