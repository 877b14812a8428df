#!/usr/bin/env python3
"""Prints the import cycles between the modules of one or more crates; exits 1 if there is one.

Usage: module-cycles.py SRC_DIR [SRC_DIR ...]   (each a crate's src/, e.g. livecheck-runtime/src)

A module depends on another when it names it by a `crate::…`, `super::…` or `self::…` path, in
a `use` tree (grouped `{…}` trees included) or inline. A path through a re-export is followed to
the module that defines the item: `crate::FakeRequest` is `fake` when lib.rs says
`pub use fake::FakeRequest;` (a cycle hidden behind a root re-export was missed before).

Two graphs are checked:
- modules (`transport::kafka`, `context`, …): a cycle between any two of them;
- top-level folders (`transport`, `context`, …): every module counted as its first path
  component, so `context` -> `transport::kafka` and `transport::x` -> `context` is a cycle of
  the folders even when no two files form one.
A module naming its own children (a folder's mod.rs wiring and re-exporting them; the root,
whose children are every module) is not an edge: they are its parts. A child naming its parent
is one. At the folder level, edges inside one folder are left out. Unit tests (`tests.rs`
files and `#[cfg(test)] mod tests { … }` blocks) are left out.
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(src):
    """Source without comments, string literals and inline test modules."""
    src = re.sub(r"//[^\n]*", "", src)
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r'"(?:\\.|[^"\\])*"', '""', src)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", src):
        if m.start() < i:
            continue
        out.append(src[i:m.start()])
        depth, j = 1, m.end()
        while j < len(src) and depth:
            depth += {"{": 1, "}": -1}.get(src[j], 0)
            j += 1
        i = j
    out.append(src[i:])
    return "".join(out)


def use_paths(tree, prefix=()):
    """The paths of a use tree such as `crate::{a::B, c::{self, D}}`, as tuples."""
    tree = tree.strip()
    depth, parts, cur = 0, [], ""
    # split the top level on "::" until a brace group
    m = re.match(r"^((?:" + IDENT + r"\s*::\s*)*)(\{.*\}|" + IDENT + r"(?:\s+as\s+" + IDENT + r")?|\*)$", tree, re.S)
    if not m:
        return []
    head = tuple(p.strip() for p in m.group(1).split("::") if p.strip())
    rest = m.group(2)
    if rest.startswith("{"):
        inner = rest[1:-1]
        items = []
        for ch in inner:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        items.append(cur)
        paths = []
        for item in items:
            if item.strip():
                paths += use_paths(item, prefix + head)
        return paths
    name = rest.split()[0]
    if name in ("self", "*"):
        return [prefix + head]
    return [prefix + head + (name,)]


class Crate:
    def __init__(self, root):
        self.root = root
        self.modules = {}  # "a::b" -> stripped source ("" for the root)
        for dp, _, fs in os.walk(root):
            for f in fs:
                if not f.endswith(".rs") or f == "tests.rs":
                    continue
                path = os.path.join(dp, f)
                rel = os.path.relpath(path, root)[:-3]
                if rel.endswith("/mod") or rel == "mod":
                    rel = rel[:-4]
                mod = "" if rel in ("lib", "main") else rel.replace("/", "::")
                with open(path) as fh:
                    self.modules[mod] = strip(fh.read())
        # Re-exports: module -> name -> absolute path it names.
        self.reexports = {}
        for mod, src in self.modules.items():
            names = {}
            for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", src):
                for path in use_paths(m.group(1)):
                    absolute = self.absolute(mod, path)
                    if absolute:
                        names[absolute[-1] if path[-1] != "self" else path[-2]] = absolute
                alias = re.search(r"\bas\s+(" + IDENT + r")\s*$", m.group(1).strip())
                if alias and use_paths(m.group(1)):
                    names[alias.group(1)] = self.absolute(mod, use_paths(m.group(1))[0])
            self.reexports[mod] = names

    def absolute(self, mod, path):
        """`path` as seen from `mod`, as a tuple from the crate root; None if external."""
        here = mod.split("::") if mod else []
        if not path:
            return None
        if path[0] == "crate":
            return tuple(path[1:])
        if path[0] == "super":
            base = here[:-1]
            path = path[1:]
            while path and path[0] == "super":
                base, path = base[:-1], path[1:]
            return tuple(base) + tuple(path)
        if path[0] == "self":
            return tuple(here) + tuple(path[1:])
        # A relative path naming a child module of `mod` (edition 2018 `use child::X`).
        if "::".join(here + [path[0]]) in self.modules:
            return tuple(here) + tuple(path)
        return None

    def module_of(self, path, seen=()):
        """The module that defines what the absolute `path` names (re-exports followed)."""
        mod = []
        for i, part in enumerate(path):
            if "::".join(mod + [part]) in self.modules:
                mod.append(part)
                continue
            target = self.reexports.get("::".join(mod), {}).get(part)
            if target and target not in seen:
                return self.module_of(tuple(target) + tuple(path[i + 1:]), seen + (target,))
            break
        return "::".join(mod)

    def edges(self):
        graph = {}
        for mod, src in self.modules.items():
            deps = set()
            facade = mod == ""
            for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", src):
                if facade and m.group(1):
                    continue
                for path in use_paths(m.group(2)):
                    absolute = self.absolute(mod, path)
                    if absolute is not None:
                        deps.add(self.module_of(absolute))
            body = re.sub(r"\buse\s+[^;]+;", "", src)
            for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:crate|super|self)(?:\s*::\s*(?:super|" + IDENT + r"))+)", body):
                path = tuple(p.strip() for p in m.group(1).split("::"))
                absolute = self.absolute(mod, path)
                if absolute is not None:
                    deps.add(self.module_of(absolute))
            # A module's own children (and the root's, which is every module) are its parts,
            # not its dependencies: a folder's mod.rs re-exports and wires them.
            graph[mod] = {d for d in deps if d != mod and not (mod == "" or d.startswith(mod + "::"))}
        return graph


def cycles(graph):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def folders(graph):
    top = {}
    for mod, deps in graph.items():
        a = mod.split("::")[0] if mod else ""
        if not a:
            continue
        for d in deps:
            b = d.split("::")[0] if d else ""
            if b and b != a:
                top.setdefault(a, set()).add(b)
        top.setdefault(a, set())
    return top


def main(roots):
    failed = False
    for root in roots:
        graph = Crate(root).edges()
        for level, g in (("modules", graph), ("folders", folders(graph))):
            found = cycles(g)
            print(f"{root}: {level} cycles:", found if found else "none")
            for comp in found:
                failed = True
                for a in comp:
                    print("   ", a or "crate", "->", sorted(d or "crate" for d in g[a] if d in comp))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
