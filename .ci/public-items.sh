#!/usr/bin/env bash
# Counts the runtime's public API: declarations with a bare `pub` (not
# pub(crate)/pub(super)) in livecheck-runtime/src — items, fields, re-exports — outside unit
# tests (tests.rs files, and each file from its first `#[cfg(test)]` on). Usage:
#   .ci/public-items.sh [REV]   (default: the work tree)
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:-}"
if [ -n "$rev" ]; then
    files=$(git ls-tree -r --name-only "$rev" livecheck-runtime/src | grep '\.rs$' | grep -v '/tests\.rs$')
else
    files=$(find livecheck-runtime/src -name '*.rs' ! -name tests.rs | sort)
fi
total=0
for f in $files; do
    if [ -n "$rev" ]; then git show "$rev:$f"; else cat "$f"; fi \
        | sed '/^#\[cfg(test)\]/,$d' > /tmp/public-items.$$
    n=$(grep -cE '^\s*pub (async fn|fn|struct|enum|trait|type|const|static|mod|use|unsafe fn|[a-z_][a-z0-9_]*:)' /tmp/public-items.$$ || true)
    total=$((total + n))
done
rm -f /tmp/public-items.$$
echo "$total"
