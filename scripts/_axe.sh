# Sourced by scripts/test: the accessibility tests run axe-core (Deque's engine,
# MPL-2.0, the npm package pinned here) inside Chromium. It is fetched once, at
# setup, with npm into .venv/ (never at test time); PROVGIT_AXE_JS tells the
# tests where it is. Without npm the accessibility tests fail with a message
# saying so, unless PROVGIT_SKIP_BROWSER=1 is set explicitly.
axe_version=4.14.1
axe_dir=".venv/axe-core-$axe_version"
if [ "${PROVGIT_SKIP_BROWSER:-}" != "1" ] && [ ! -f "$axe_dir/axe.min.js" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "scripts/test: fetching axe-core $axe_version for the accessibility tests" >&2
    axe_tmp="$(mktemp -d)"
    if (cd "$axe_tmp" && npm pack --silent "axe-core@$axe_version" >/dev/null 2>&1) \
      && tar -xzf "$axe_tmp/axe-core-$axe_version.tgz" -C "$axe_tmp"; then
      mkdir -p "$axe_dir"
      cp "$axe_tmp/package/axe.min.js" "$axe_tmp/package/LICENSE" "$axe_dir/"
    else
      echo "scripts/test: could not fetch axe-core; the accessibility tests will fail" >&2
    fi
    rm -rf "$axe_tmp"
  else
    echo "scripts/test: npm is missing; the accessibility tests will fail" >&2
  fi
fi
export PROVGIT_AXE_JS="${PROVGIT_AXE_JS:-$PWD/$axe_dir/axe.min.js}"
