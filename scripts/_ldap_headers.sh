# Sourced by scripts/_venv.sh before it installs provgit: python-ldap (the
# directory driver's read path) compiles against libldap's and libsasl2's
# headers. Installed here when missing and we may (root, apt-get available);
# otherwise pip's error names the missing header.
if [ ! -f /usr/include/ldap.h ] || [ ! -f /usr/include/sasl/sasl.h ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing libldap-dev and libsasl2-dev (python-ldap builds against them)" >&2
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libldap-dev libsasl2-dev >/dev/null \
      || echo "could not install libldap-dev/libsasl2-dev; installing python-ldap will fail" >&2
  else
    echo "libldap-dev and libsasl2-dev are missing (not root or no apt-get): install them" \
      "(apt-get install libldap-dev libsasl2-dev) or installing python-ldap will fail" >&2
  fi
fi
