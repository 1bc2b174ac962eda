#!/usr/bin/env python3
"""Import graph of the clawlinkd crate between its top-level modules, and its cycles.

Reads every `crate::` path in daemon/src (use lines and inline paths), maps each file to its
top-level module (`daemon/src/relay/conn.rs` -> `relay`, `daemon/src/agent.rs` -> `agent`)
and each path to the module it names. Prints the edges with --edges; exits 1 and prints
each strongly connected component of more than one module if the graph has a cycle.

    python3 scripts/module-cycles.py [--edges] [--files]

--files does the same between files (each `crate::a::b` path resolved to the deepest
existing file), which is what the per-file cycle in the issue tracker was measured with.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon", "src")
PATH = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*)\{([^}]*)\}", re.S)


def files():
    for d, _, fs in os.walk(ROOT):
        for f in fs:
            if f.endswith(".rs"):
                yield os.path.relpath(os.path.join(d, f), ROOT)


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def file_of(segments):
    """The deepest file that a `crate::a::b::c` path lands in."""
    best = None
    for i in range(1, len(segments) + 1):
        base = os.path.join(*segments[:i])
        for cand in (base + ".rs", os.path.join(base, "mod.rs")):
            if os.path.exists(os.path.join(ROOT, cand)):
                best = cand
    return best


def strip_tests(text):
    # `#[cfg(test)] mod tests { ... }` at the end of a file: test code may import freely.
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]


def graph(by_file):
    edges = {}
    for rel in files():
        text = strip_tests(open(os.path.join(ROOT, rel), encoding="utf-8").read())
        text = re.sub(r"//[^\n]*", "", text)
        src = rel if by_file else module_of(rel)[0].removesuffix(".rs")
        paths = [m.group(1).split("::") for m in PATH.finditer(text)]
        for m in GROUP.finditer(text):
            prefix = [p for p in m.group(1).split("::") if p]
            for item in m.group(2).split(","):
                item = item.strip().split("::")[0].split(" ")[0]
                if item and item != "self":
                    paths.append(prefix + [item])
                elif prefix:
                    paths.append(prefix)
        for segs in paths:
            if by_file:
                dst = file_of(segs)
            else:
                dst = segs[0]
                if not (os.path.exists(os.path.join(ROOT, dst + ".rs")) or os.path.isdir(os.path.join(ROOT, dst))):
                    dst = None
            if dst and dst != src:
                edges.setdefault(src, set()).add(dst)
    return edges


def sccs(edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    nodes = set(edges) | {d for v in edges.values() for d in v}

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    by_file = "--files" in sys.argv
    edges = graph(by_file)
    if "--edges" in sys.argv:
        for s in sorted(edges):
            print(f"{s} -> {', '.join(sorted(edges[s]))}")
    cycles = sccs(edges)
    what = "files" if by_file else "modules"
    if cycles:
        for c in cycles:
            print(f"cycle between {len(c)} {what}: {' '.join(c)}")
        sys.exit(1)
    print(f"no import cycle between {what} ({len(edges)} with imports)")


main()
