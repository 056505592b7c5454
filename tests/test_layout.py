"""The package's layout rules (README "Development"): read from the source, not from a list.

- no two modules and no two classes share a name, so a name means one thing;
- no import circles between Turnout's modules, counting lazy imports inside functions (a
  lazy import that only breaks a circle hides the circle, it does not remove it);
  imports under `if TYPE_CHECKING:` are annotations and do not count;
- dependencies between packages point one way (`LAYERS`), lazy imports counted the same way;
- no ContextVar: a request's state is passed as an argument.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "turnout"


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        trees[name] = ast.parse(path.read_text(), filename=str(path))
    return trees


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            strongconnect(node)
    return components


def test_no_two_modules_share_a_name() -> None:
    names = Counter(
        path.stem for path in PACKAGE.rglob("*.py") if path.stem not in ("__init__", "__main__")
    )
    assert [name for name, count in names.items() if count > 1] == []


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = {}
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(module)
    assert {name: mods for name, mods in where.items() if len(mods) > 1} == {}


def test_no_import_circles_between_modules() -> None:
    trees = _modules()
    known = set(trees)
    # A package's __init__ re-exporting its modules is not a circle with them.
    graph = {
        name: {dep for dep in _imports(name, tree, known) if not dep.startswith(name + ".")}
        for name, tree in trees.items()
    }
    assert _cycles(graph) == []


def test_the_checker_sees_a_lazy_circle() -> None:
    """The rule above can fail: a circle closed by an import inside a function is found."""
    first = ast.parse("from turnout.x.b import thing\n")
    second = ast.parse("def later():\n    from turnout.x.a import other\n")
    known = {"turnout.x.a", "turnout.x.b"}
    graph = {"turnout.x.a": _imports("turnout.x.a", first, known),
             "turnout.x.b": _imports("turnout.x.b", second, known)}
    assert _cycles(graph) == [["turnout.x.a", "turnout.x.b"]]


# STYLE.md 2: dependencies point one way, `api -> routing -> upstream / pool -> config`. A
# package imports only packages of the layers below its own; packages of one layer do not
# import each other. The packages that line does not name sit where their imports put them:
# the edge's helpers (observability, shared state, the probe) between api and routing, the
# wire dialects and the sandbox beside upstream and pool; config, errors and encoding at the
# bottom. A new package fails the test until it is given a layer here.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli", "__main__"}),
    frozenset({"main"}),
    frozenset({"api"}),
    frozenset({"observability", "shared", "probe"}),
    frozenset({"routing"}),
    frozenset({"upstream", "pool", "dialects", "sandbox"}),
    frozenset({"config", "errors", "encoding"}),
)


def _package(module: str) -> str:
    """`turnout.pool.refresh` -> `pool`, `turnout.config` -> `config`."""
    return module.split(".")[1]


def _against_the_layers(graph: dict[str, set[str]]) -> list[str]:
    layer = {package: depth for depth, packages in enumerate(LAYERS) for package in packages}
    wrong = []
    for module, deps in sorted(graph.items()):
        if module == "turnout":
            continue
        here = _package(module)
        for dep in sorted(deps):
            there = _package(dep)
            if there != here and layer.get(there, -1) <= layer.get(here, -1):
                wrong.append(f"{module} -> {dep}")
    return wrong


def test_dependencies_point_one_way() -> None:
    trees = _modules()
    known = set(trees)
    unplaced = {_package(name) for name in known if name != "turnout"} - set().union(*LAYERS)
    assert unplaced == set(), "give each package a layer in LAYERS"
    graph = {name: _imports(name, tree, known) - {"turnout"} for name, tree in trees.items()}
    assert _against_the_layers(graph) == []


def test_the_layer_check_sees_a_lazy_import_upwards() -> None:
    """pool importing routing inside a function is still pool depending on routing."""
    lazy = ast.parse("from turnout.pool.model import Pool\ndef later():\n    from turnout.routing.snapshot import x\n")
    known = {"turnout.pool.refresh", "turnout.pool.model", "turnout.routing.snapshot"}
    graph = {"turnout.pool.refresh": _imports("turnout.pool.refresh", lazy, known)}
    assert _against_the_layers(graph) == ["turnout.pool.refresh -> turnout.routing.snapshot"]


def test_no_context_variables() -> None:
    """A request's state is passed, not looked up: its record reaches the engine as an argument
    (`Engine.complete(attempts=...)`), never through a ContextVar a distant observer reads."""
    users = sorted(
        module for module, tree in _modules().items() for node in ast.walk(tree)
        if (isinstance(node, ast.Import) and any(alias.name == "contextvars" for alias in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module == "contextvars")
    )
    assert users == []


def test_serving_imports_no_terminal_libraries() -> None:
    """`turnout probe` needs rich; the gateway must not pay for it (httpx imports its own CLI, with
    rich and pygments, whenever they are installed: ~13 MB of RSS for nothing)."""
    import subprocess
    import sys

    code = "import sys, turnout.main, httpx; print(sorted({'rich', 'pygments'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
