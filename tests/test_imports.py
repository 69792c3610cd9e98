"""
The package's import graph, read from the source with ``ast``: no cycle, and the layers of
docs/DESIGN: public modules import private ones, never the reverse; a transport is imported
only by the factory that needs it, when it is called; the test server and the command line
tool sit on top.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import ld_eventsource
from tests.test_public_api import run_python

PACKAGE = "ld_eventsource"
ROOT = Path(ld_eventsource.__file__).resolve().parent

TRANSPORTS = frozenset(
    {"ld_eventsource._urllib3", "ld_eventsource._aiohttp", "ld_eventsource._httpx"}
)
FACTORIES = frozenset(
    {"ld_eventsource.config.connect_strategy", "ld_eventsource.config.async_connect_strategy"}
)
# The only other imports made inside functions, each for a reason of its own.
LAZY_ALLOWED = {
    # PEP 562 attributes: ``import ld_eventsource`` loads no client, and so neither urllib3
    # nor aiohttp, until one is asked for.
    ("ld_eventsource", "ld_eventsource.sse_client"),
    ("ld_eventsource", "ld_eventsource.async_client"),
    # The command line tool: a usage error or --help needs neither urllib3 nor the client.
    ("ld_eventsource._cli.main", "ld_eventsource._cli.args"),
    ("ld_eventsource._cli.main", "ld_eventsource._cli.run"),
    ("ld_eventsource._cli.run", "ld_eventsource.sse_client"),
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    lazy: bool  # inside a function, so made when it is called


def module_name(path: Path) -> str:
    parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules of this package that the statement imports (``from p import m`` too)."""
    assert not (isinstance(node, ast.ImportFrom) and node.level), "no relative imports"
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return [name for name in names if name in MODULES]


def imports_of(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child.test):
                for other in child.orelse:
                    visit_statement(other, lazy)
                continue  # for the type checker only: never imported at run time
            visit_statement(child, lazy)

    def visit_statement(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in targets(node):
                found.append(Import(module, name, node.lineno, lazy))
            return
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        visit(node, inner)

    visit(tree, False)
    return found


ALL_IMPORTS = [i for module in MODULES for i in imports_of(module)]


def edges(*, lazy: bool) -> dict[str, set[str]]:
    """
    Who imports whom (with ``lazy``, the imports inside functions too). Importing
    ``p.q.m`` runs the ``__init__`` of ``p.q`` first, so a module outside ``p.q`` that
    imports ``p.q.m`` depends on ``p.q`` as well (a module inside it does not: that
    ``__init__`` is running already).
    """
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for i in ALL_IMPORTS:
        if i.lazy and not lazy:
            continue
        module = i.imported
        while module:
            # A package the importer is in has started its __init__ already: no edge.
            if not (i.importer == module or i.importer.startswith(module + ".")):
                graph[i.importer].add(module)
            module = module.rpartition(".")[0]
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def test_the_graph_is_read() -> None:
    # The reader sees what it must: a module-level import, a lazy one, a TYPE_CHECKING one.
    connect = {(i.imported, i.lazy) for i in imports_of("ld_eventsource.config.connect_strategy")}
    assert ("ld_eventsource._connect", False) in connect
    assert ("ld_eventsource._urllib3", True) in connect
    assert all(imported != "ld_eventsource._urllib3" or lazy for imported, lazy in connect)
    reconnect = {i.imported for i in imports_of("ld_eventsource._reconnect")}
    assert "ld_eventsource.config.error_strategy" not in reconnect  # only for the type checker
    error_strategy = {i.imported for i in imports_of("ld_eventsource.config.error_strategy")}
    assert "ld_eventsource._validate" in error_strategy  # from ld_eventsource import _validate
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_at_module_level() -> None:
    assert find_cycle(edges(lazy=False)) is None


def test_no_import_cycle_with_the_lazy_imports_either() -> None:
    assert find_cycle(edges(lazy=True)) is None


def test_lazy_imports_only_from_a_factory_to_its_transport() -> None:
    lazy = {(i.importer, i.imported): i for i in ALL_IMPORTS if i.lazy}
    for (importer, imported), i in sorted(lazy.items()):
        allowed = (importer in FACTORIES and imported in TRANSPORTS) or (
            (importer, imported) in LAZY_ALLOWED
        )
        assert allowed, f"{importer}:{i.line} imports {imported} inside a function"


def test_transports_are_imported_by_the_factories_only_and_lazily() -> None:
    for i in ALL_IMPORTS:
        if i.imported in TRANSPORTS:
            assert i.importer in FACTORIES and i.lazy, i


def test_private_modules_import_no_public_config_or_client() -> None:
    # The core's private modules sit below the public ones; the command line tool sits on
    # top of the public API and may use it.
    public_above = (
        "ld_eventsource.config",
        "ld_eventsource.sse_client",
        "ld_eventsource.async_client",
    )
    for i in ALL_IMPORTS:
        if is_private(i.importer) and not i.importer.startswith("ld_eventsource._cli"):
            assert not i.imported.startswith(public_above), i


def test_the_test_server_imports_nothing_of_the_clients() -> None:
    # So that a bug in a client cannot hide a bug in the server.
    for i in ALL_IMPORTS:
        if i.importer.startswith("ld_eventsource.testing"):
            assert i.imported.startswith("ld_eventsource.testing"), i


def test_config_loads_no_transport_until_a_factory_is_called() -> None:
    run_python(
        """
        import sys
        import ld_eventsource.config
        from ld_eventsource.config import AsyncConnectStrategy, ConnectStrategy
        loaded = {
            "urllib3", "aiohttp", "httpx", "httpx2", "h2",
            "ld_eventsource._urllib3", "ld_eventsource._aiohttp", "ld_eventsource._httpx",
        }
        assert not loaded & set(sys.modules), loaded & set(sys.modules)
        ConnectStrategy.http("http://127.0.0.1/")
        assert "ld_eventsource._urllib3" in sys.modules
        assert "ld_eventsource._aiohttp" not in sys.modules and "aiohttp" not in sys.modules
        assert "httpx" not in sys.modules and "ld_eventsource._httpx" not in sys.modules
        ConnectStrategy.httpx("http://127.0.0.1/")
        assert "ld_eventsource._httpx" in sys.modules and "httpx" in sys.modules
        assert "h2" not in sys.modules and "httpx2" not in sys.modules
        """
    )
