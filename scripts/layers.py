#!/usr/bin/env python3
"""Holds the crate to the layer order of `src/lib.rs`'s Layout section,
and the files of each folder to one direction.

Every top-level module of the library (a folder under src/ or a flat file)
belongs to one layer. A module may use modules of its own layer or of a
lower one, never a higher one, and the top-level modules' imports (within
a layer too) form no cycle. Test code (`#[cfg(test)]` modules) and doc
comments are not imports and are skipped. Within a folder, the files
(its `mod.rs` aside) use each other without a cycle either. Exits 1 naming each offending
import, 0 when the picture holds.

    python3 scripts/layers.py          # check src/
"""

import os
import re
import sys

# Highest first; keep in step with the Layout section of src/lib.rs.
LAYERS = [
    ("server", ["server"]),
    ("transport", ["http", "api", "web", "socketio"]),
    ("hub", ["hub"]),
    ("engines", ["escalation", "broker", "registry", "presence", "session", "store", "report", "rooms", "calls", "witness"]),
    ("connections", ["connections"]),
    ("infrastructure", ["cluster", "trail", "auth", "config"]),
    ("leaves", ["observe", "clock", "deadlines", "notification", "protocol", "files"]),
]

RANK = {m: len(LAYERS) - i for i, (_, mods) in enumerate(LAYERS) for m in mods}
LAYER_OF = {m: name for name, mods in LAYERS for m in mods}

USE = re.compile(r"\bcrate::(\{[^;]*|[a-z_][a-z0-9_]*)", re.S)
NAME = re.compile(r"^\s*([a-z_][a-z0-9_]*)")


def top_module(path, src):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def code_of(text):
    """The file's text without comments and without `#[cfg(test)]` items."""
    out = []
    skip_depth = None
    depth = 0
    pending_test = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            continue
        if skip_depth is None and stripped.startswith("#[cfg(test)]"):
            pending_test = True
            continue
        code = line.split("//")[0]
        if pending_test and skip_depth is None:
            if "{" in code:
                skip_depth = depth
                pending_test = False
            elif code.strip().endswith(";"):
                # `#[cfg(test)] mod tests;` or a test-only `use`.
                pending_test = False
                continue
        opens, closes = code.count("{"), code.count("}")
        if skip_depth is not None:
            depth += opens - closes
            if depth <= skip_depth:
                skip_depth = None
            continue
        depth += opens - closes
        out.append(code)
    return "\n".join(out)


def imports(text):
    found = set()
    for m in USE.finditer(code_of(text)):
        item = m.group(1)
        if item.startswith("{"):
            # `crate::{a, b::c}`: the first name of each part.
            inner = item[1:]
            level, part = 0, ""
            for ch in inner:
                if ch == "{":
                    level += 1
                elif ch == "}":
                    if level == 0:
                        break
                    level -= 1
                if ch == "," and level == 0:
                    n = NAME.match(part)
                    if n:
                        found.add(n.group(1))
                    part = ""
                else:
                    part += ch
            n = NAME.match(part)
            if n:
                found.add(n.group(1))
        else:
            found.add(item)
    return found


def sibling_cycles(src):
    """Cycles among the files of one folder (`mod.rs` aside: a folder's
    root declares and re-exports its children). An edge is a path naming a
    sibling module: `super::b::...` or `crate::folder::b::...`."""
    problems = []
    for dirpath, dirs, files in os.walk(src):
        if dirpath == src:
            continue
        names = {f[:-3] for f in files if f.endswith(".rs") and f != "mod.rs"}
        names |= set(dirs)
        modpath = "::".join(os.path.relpath(dirpath, src).split(os.sep))
        pattern = re.compile(
            r"(?:\bsuper|\bcrate::%s)::(?:\{([^;]*?)\}|([a-z_][a-z0-9_]*))" % re.escape(modpath), re.S
        )
        edges = {}
        for f in files:
            if not f.endswith(".rs") or f == "mod.rs":
                continue
            me = f[:-3]
            with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                code = code_of(fh.read())
            for m in pattern.finditer(code):
                used = set()
                if m.group(2):
                    used.add(m.group(2))
                else:
                    for part in m.group(1).split(","):
                        n = NAME.match(part)
                        if n and "::" in part:
                            used.add(n.group(1))
                for u in used & names:
                    if u != me:
                        edges.setdefault(me, set()).add(u)
        state, stack = {}, []

        def visit(node):
            state[node] = 1
            stack.append(node)
            for nxt in sorted(edges.get(node, ())):
                if state.get(nxt) == 1:
                    cycle = stack[stack.index(nxt):] + [nxt]
                    rel = os.path.relpath(dirpath, os.path.dirname(src))
                    problems.append(f"import cycle in {rel}/: " + " -> ".join(cycle))
                elif nxt not in state:
                    visit(nxt)
            stack.pop()
            state[node] = 2

        for node in sorted(edges):
            if node not in state:
                visit(node)
    return problems


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = os.path.join(root, "src")
    edges = {}
    problems = []
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            if rel in ("src/lib.rs", "src/main.rs"):
                continue
            module = top_module(path, src)
            if module not in RANK:
                problems.append(f"{rel}: module `{module}` has no layer in scripts/layers.py")
                continue
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            for used in sorted(imports(text)):
                if used in ("self", "super") or used == module:
                    continue
                if used not in RANK:
                    # Items of lib.rs itself (re-exports, build_hub): the top.
                    if RANK[module] < RANK["server"]:
                        problems.append(f"{rel}: uses crate::{used} (lib.rs) from layer {LAYER_OF[module]}")
                    continue
                edges.setdefault(module, set()).add(used)
                if RANK[used] > RANK[module]:
                    problems.append(
                        f"{rel}: `{module}` ({LAYER_OF[module]}) uses `{used}` ({LAYER_OF[used]}), a higher layer"
                    )
    # Cycles among top-level modules.
    state = {}
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                problems.append("import cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    problems += sibling_cycles(src)
    if problems:
        print("layer check failed (the order is in src/lib.rs, Layout):")
        for p in problems:
            print("  " + p)
        return 1
    print(f"layer check: {len(RANK)} modules in {len(LAYERS)} layers, no upward import, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
