#!/usr/bin/env python3
"""Import circles between the modules of each crate: a module's edges are its `crate::a::b` and
`super::x` paths (comments and `#[cfg(test)] mod` blocks left out; a module and its own parent
or child are one room and not counted). Prints every strongly connected component of more than
one module and exits 1 if there is any. Usage: scripts/module-circles.py [CRATE_DIR...]
(default: crates/*). Run by scripts/test.sh stage fmt."""
import os, re, sys
from collections import defaultdict

def modpath(src, f):
    rel = os.path.relpath(f, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return tuple(rel)

def strip_comments(t):
    t = re.sub(r'//[^\n]*', '', t)
    return re.sub(r'/\*.*?\*/', '', t, flags=re.S)

def crate_graph(src):
    files = []
    for d, _, fs in os.walk(src):
        if "/bin" in d[len(src):]:
            continue
        files += [os.path.join(d, f) for f in fs if f.endswith(".rs")]
    mods = {modpath(src, f): f for f in files}
    g = defaultdict(set)
    for m, f in mods.items():
        t = strip_comments(open(f).read())
        # cut #[cfg(test)] mod tests { ... } blocks: tests may import anything
        t = re.split(r'#\[cfg\(test\)\]\s*mod\s+\w+\s*\{', t)[0]
        refs = []
        for mm in re.finditer(r'\bcrate((?:::\w+)+)', t):
            refs.append(tuple(mm.group(1).split("::")[1:]))
        for mm in re.finditer(r'\b((?:super::)+)(\w+(?:::\w+)*)', t):
            n = mm.group(1).count("super::")
            base = m[:-n] if n <= len(m) else ()
            # a file foo/mod.rs's super is foo's parent; foo/bar.rs super is foo
            refs.append(base + tuple(mm.group(2).split("::")))
        # use crate::{a, b::c}
        for mm in re.finditer(r'\bcrate::\{([^;]*)\}', t, flags=re.S):
            for part in re.split(r',', mm.group(1)):
                part = part.strip().split("::")
                if part and re.match(r'^\w+$', part[0]):
                    refs.append(tuple(part))
        for r in refs:
            # longest prefix that is a module
            tgt = None
            for i in range(len(r), 0, -1):
                if r[:i] in mods:
                    tgt = r[:i]; break
            if tgt is None or tgt == ():
                continue
            # an edge to an ancestor or descendant of m is parent/child structure: ignore
            if tgt[:len(m)] == m or m[:len(tgt)] == tgt:
                continue
            g[m].add(tgt)
    return mods, g

def sccs(nodes, g):
    idx, low, on, st, out, c = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)
    def v(n):
        idx[n] = low[n] = c[0]; c[0] += 1; st.append(n); on.add(n)
        for w in g.get(n, ()):
            if w not in idx:
                v(w); low[n] = min(low[n], low[w])
            elif w in on:
                low[n] = min(low[n], idx[w])
        if low[n] == idx[n]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == n: break
            out.append(comp)
    for n in nodes:
        if n not in idx: v(n)
    return [s for s in out if len(s) > 1]

bad = 0
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
crates = sys.argv[1:] or sorted(os.path.join(root, "crates", d) for d in os.listdir(os.path.join(root, "crates")))
for crate in crates:
    src = os.path.join(crate, "src")
    if not os.path.isdir(src):
        continue
    mods, g = crate_graph(src)
    for comp in sccs(list(mods), g):
        bad += 1
        names = sorted("::".join(x) or "<root>" for x in comp)
        print(f"{os.path.relpath(crate, root)}: circle: {' <-> '.join(names)}")
        for a in comp:
            for b in sorted(g[a]):
                if b in comp:
                    print(f"    {'::'.join(a)} -> {'::'.join(b)}")
print(f"module circles: {bad}")
sys.exit(1 if bad else 0)
