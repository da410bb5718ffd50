# Sourced by scripts/*: creates .venv with a Python >= 3.11 and installs provgit
# (with the given extra) when pyproject.toml changed since the last install.
extra="${1:-}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "provgit needs Python >= 3.11 (found: $("$py" --version 2>&1))" >&2; exit 1; }
  "$py" -m venv .venv
fi
stamp=".venv/.provgit-installed${extra:+-$extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # The test extra includes python-ldap (fast-ldap), which builds against C headers.
  if [ "$extra" = "test" ]; then . scripts/_ldap_headers.sh; fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra:+[$extra]}"
  touch "$stamp"
fi
