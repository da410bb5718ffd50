# Sourced by scripts/test: the journal tests run on PostgreSQL too, with a
# throwaway cluster they start themselves (initdb/pg_ctl from Debian's
# `postgresql`; tests/journal/pg.py). Installed here when missing and we may
# (root, apt-get available). The package's own cluster is never used.
# PROVGIT_TEST_PG_URL names a server to use instead.
if [ -z "${PROVGIT_TEST_PG_URL:-}" ] && ! command -v initdb >/dev/null 2>&1 \
  && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: installing postgresql for the journal tests" >&2
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || echo "scripts/test: could not install postgresql; the journal tests will fail" >&2
  else
    echo "scripts/test: initdb is missing (not root or no apt-get); the journal tests will fail" >&2
  fi
fi
