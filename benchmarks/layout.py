"""The package's layout as the next engineer reads it: files, lines, what imports what, the
longest functions, and any import circle (imports inside functions included).

    python benchmarks/layout.py                 # src/digitrec of this checkout
    python benchmarks/layout.py --root OTHER/src/digitrec --json layout.json

Reads the source with `ast` only; nothing is imported or run.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "src" / "digitrec"


def _module_imports(tree: ast.Module, modules: set[str]) -> tuple[set[str], set[str]]:
    """(imported at module level, imported inside a function) among the package's own modules."""
    top, inner = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("digitrec")):
            base = (node.module or "").removeprefix("digitrec").lstrip(".")
            names = [base.split(".")[0]] if base else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("digitrec.")]
        names = [n for n in names if n in modules]
        if names:
            (top if node in tree.body or _in_type_checking(tree, node) else inner).update(names)
    return top, inner - top


def _in_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
            if any(node is n for n in ast.walk(stmt)):
                return True
    return False


def _functions(tree: ast.Module) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node.name, node.end_lineno - node.lineno + 1))
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary circle, found by a depth-first walk from each module (the graph is small)."""
    found = set()
    out = []

    def walk(start, node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                key = frozenset(path)
                if key not in found:
                    found.add(key)
                    out.append(path + [start])
            elif nxt not in path and nxt > start:
                walk(start, nxt, path + [nxt])

    for m in sorted(graph):
        walk(m, m, [m])
    return out


def layout(root: Path) -> dict:
    files = sorted(p for p in root.glob("*.py"))
    modules = {p.stem for p in files}
    rows, graph = [], {}
    for p in files:
        tree = ast.parse(p.read_text())
        top, inner = _module_imports(tree, modules - {p.stem})
        fns = _functions(tree)
        longest = max(fns, key=lambda f: f[1], default=("-", 0))
        rows.append({"module": p.stem, "lines": len(p.read_text().splitlines()), "imports": sorted(top),
                     "imports_in_functions": sorted(inner), "longest_function": longest[0],
                     "longest_lines": longest[1]})
        graph[p.stem] = top | inner
    return {"modules": rows, "total_lines": sum(r["lines"] for r in rows), "cycles": _cycles(graph)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    report = layout(args.root)
    print(f"{'module':<14}{'lines':>6}  {'longest function':<28} imports (* = inside a function)")
    for r in report["modules"]:
        deps = ", ".join(r["imports"] + [f"{m}*" for m in r["imports_in_functions"]])
        print(f"{r['module']:<14}{r['lines']:>6}  {r['longest_function'][:22] + ' ' + str(r['longest_lines']):<28} {deps}")
    print(f"\n{len(report['modules'])} modules, {report['total_lines']} lines")
    print("import circles: " + ("; ".join(" -> ".join(c) for c in report["cycles"]) or "none"))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
