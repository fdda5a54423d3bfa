"""Issue 19: the packages of `shared/` depend one way, in the order ARCHITECTURE.md declares.

Every import counts, wherever it stands: at module level, inside a function,
under `TYPE_CHECKING`, absolute (`from shared.x import`, `import shared.x`) or
relative. A package may import its own modules and the packages below it,
never one above it; so no two packages import each other. An import inside a
function is allowed only where a cold start needs it, and says so (`# lazy:`).
The order is read from ARCHITECTURE.md itself, so the page cannot drift from
the code.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
ORDER_LINE = re.compile(r"^Package order \(lowest first\): (.+)$", re.M)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module (or package), dotted
    line: int
    in_function: bool
    lazy_reason: bool  # the import's first line carries `# lazy: <reason>`


def declared_order() -> list[str]:
    match = ORDER_LINE.search((ROOT / "ARCHITECTURE.md").read_text())
    assert match, "ARCHITECTURE.md declares no 'Package order (lowest first): ...' line"
    return re.findall(r"`(\w+)`", match.group(1))


def package_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "shared" else None


def imports_of(module: str, source: str, *, is_package: bool = False) -> list[Import]:
    """Every import of one module's source, resolved to dotted module names."""
    tree = ast.parse(source)
    lines = source.splitlines()
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    base = module.split(".") if is_package else module.split(".")[:-1]
    out: list[Import] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            anchor = ".".join(base[:len(base) - node.level + 1]) if node.level else ""
            parent = ".".join(p for p in (anchor, node.module or "") if p)
            # `from shared.crm import paths` imports the module shared.crm.paths
            targets = [f"{parent}.{a.name}" if _is_module(f"{parent}.{a.name}") else parent for a in node.names]
        else:
            continue
        lazy = "# lazy:" in lines[node.lineno - 1]
        out += [Import(module, t, node.lineno, id(node) in in_function, lazy) for t in dict.fromkeys(targets)]
    return out


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def shared_imports() -> list[Import]:
    out: list[Import] = []
    for path in sorted(SHARED.rglob("*.py")):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        is_package = path.name == "__init__.py"
        if is_package:
            dotted = dotted.removesuffix(".__init__")
        out += imports_of(dotted, path.read_text(), is_package=is_package)
    return out


def package_edges() -> dict[tuple[str, str], list[Import]]:
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in shared_imports():
        src, dst = package_of(imp.module), package_of(imp.target)
        if src and dst and src != dst:
            edges.setdefault((src, dst), []).append(imp)
    return edges


def _where(imps: list[Import]) -> str:
    return ", ".join(f"{i.module}:{i.line} imports {i.target}" for i in imps[:3])


def test_issue19_every_package_of_shared_is_placed_in_the_declared_order() -> None:
    packages = sorted(p.name for p in SHARED.iterdir() if (p / "__init__.py").is_file())
    order = declared_order()
    assert len(order) == len(set(order)), f"a package is listed twice: {order}"
    assert sorted(order) == packages, f"ARCHITECTURE.md's order {order} is not the packages {packages}"


def test_issue19_no_two_packages_import_each_other() -> None:
    edges = package_edges()
    both_ways = sorted((a, b) for (a, b) in edges if (b, a) in edges and a < b)
    assert not both_ways, "; ".join(f"{a}<->{b}: {_where(edges[a, b])} / {_where(edges[b, a])}"
                                    for a, b in both_ways)


def test_issue19_no_package_imports_one_above_it() -> None:
    rank = {name: i for i, name in enumerate(declared_order())}
    upward = {edge: imps for edge, imps in package_edges().items() if rank[edge[0]] < rank[edge[1]]}
    assert not upward, "; ".join(f"{a} -> {b} (above it): {_where(imps)}" for (a, b), imps in sorted(upward.items()))


def test_issue19_every_import_of_shared_names_a_module_that_exists() -> None:
    """After a move, a stale `shared.old.place` inside a function would only fail when that function runs."""
    missing = [i for i in shared_imports() if i.target.startswith("shared") and not _is_module(i.target)]
    assert not missing, _where(missing)


def test_issue19_an_import_inside_a_function_says_why_it_is_lazy() -> None:
    unexplained = [i for i in shared_imports() if i.in_function and not i.lazy_reason]
    assert not unexplained, f"in-function imports without '# lazy: <reason>': {_where(unexplained)}"


def test_issue19_the_reader_sees_imports_inside_functions_relative_and_plain() -> None:
    """The checks above are only as good as this reader: every spelling of an import is seen."""
    source = (
        "import shared.gmail.errors\n"
        "from shared.crm import paths\n"
        "from . import fetch\n"
        "from ..sync.engine import sync_pass\n"
        "def f():\n"
        "    from shared.send.flow import send  # lazy: test\n"
    )
    found = {(i.target, i.in_function, i.lazy_reason) for i in imports_of("shared.gmail.credentials", source)}
    assert found == {("shared.gmail.errors", False, False), ("shared.crm.paths", False, False),
                     ("shared.gmail.fetch", False, False), ("shared.sync.engine", False, False),
                     ("shared.send.flow", True, True)}
