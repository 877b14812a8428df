#!/usr/bin/env bash
# Counts the runtime's public API (issue 17): declarations with a bare `pub` (not
# pub(crate)/pub(super)) in livecheck-runtime/src — items, methods, fields, re-exports — outside
# unit tests (tests.rs files, and each file from its first `#[cfg(test)]` on).
#
# Plumbing is counted apart, as "hidden": whatever is inside `pub mod __private { ... }` (what the
# macros expand to), and any declaration whose attributes (the contiguous `#[...]`/`///` lines
# right above it, or the same line) include `#[doc(hidden)]` — with, when it opens a `{ ... }`
# block (a hidden struct, impl or module), everything inside that block.
#
# Usage: .ci/public-items.sh [REV]   (default: the work tree). Prints "public: N" and "hidden: N".
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:-}"
if [ -n "$rev" ]; then
    files=$(git ls-tree -r --name-only "$rev" livecheck-runtime/src | grep '\.rs$' | grep -v '/tests\.rs$')
else
    files=$(find livecheck-runtime/src -name '*.rs' ! -name tests.rs | sort)
fi
for f in $files; do
    if [ -n "$rev" ]; then git show "$rev:$f"; else cat "$f"; fi | sed '/^#\[cfg(test)\]/,$d'
done | awk '
    # Braces of a line, string and char literals and comments left out.
    function braces(line,   s) {
        s = line
        gsub(/\\./, "", s)
        gsub(/"[^"]*"/, "", s)
        gsub(/'"'"'.'"'"'/, "", s)
        sub(/\/\/.*/, "", s)
        return gsub(/\{/, "{", s) - gsub(/\}/, "}", s)
    }
    BEGIN { depth = 0; hidden_until = -1; attrs_hidden = 0; public = 0; hidden = 0 }
    {
        line = $0
        is_pub = line ~ /^[ \t]*pub (async fn|fn|struct|enum|trait|type|const|static|mod|use|unsafe fn|[a-z_][a-z0-9_]*:)/
        is_attr = line ~ /^[ \t]*(#\[|\/\/\/)/
        if (line ~ /#\[doc\(hidden\)\]/) attrs_hidden = 1
        inside = (hidden_until >= 0)
        this_hidden = inside || attrs_hidden || line ~ /^[ \t]*pub mod __private/
        if (is_pub) { if (this_hidden) hidden++; else public++ }
        d = braces(line)
        # A hidden declaration that opens a block hides the block.
        if (!inside && (is_pub || !is_attr) && this_hidden && d > 0) hidden_until = depth
        depth += d
        if (hidden_until >= 0 && depth <= hidden_until) hidden_until = -1
        if (!is_attr) attrs_hidden = 0
    }
    END { printf "public: %d\nhidden: %d\n", public, hidden }
'
