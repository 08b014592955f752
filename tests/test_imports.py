"""The import graph: no cycles between modelhub's modules, and every module imports on its own.

A cycle works or breaks depending on which module happens to be imported first (a plugin importing
``modelhub.exchange.commands`` before ``modelhub.cli``, say); the floors of docs/architecture.md only
hold if lower modules never import higher ones back.
"""

import ast
import subprocess
import sys
from pathlib import Path

import modelhub

PACKAGE_ROOT = Path(modelhub.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every modelhub module ``name`` imports, at load time or inside a function: an import deferred
    into a function still makes the two modules depend on each other, which is what the floors forbid."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for statement in _import_statements(ast.parse(path.read_text())):
        if isinstance(statement, ast.Import):
            targets.update(alias.name for alias in statement.names)
        else:
            base = statement.module or ""
            if statement.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - statement.level + 1] + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in statement.names)  # submodules named by from-imports
    return {target for target in targets if target in MODULES and target != name}


def _import_statements(node):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        return  # for type checkers only: never runs
    else:
        for child in ast.iter_child_nodes(node):
            yield from _import_statements(child)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_its_own_importers():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for name in graph:
        graph[name] = {target for target in graph[name] if not target.startswith(name + ".")}
    assert _cycles(graph) == []


def test_the_checker_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_imports_on_its_own():
    """Each module imported first, in a process where no other modelhub module is loaded yet."""
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m == 'modelhub' or m.startswith('modelhub.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(failed))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, *MODULES], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
