"""The package's import graph: no cycles, and imports that run one way, from the shell and the CLI
down to the core, never up. Every import counts, also those inside functions and under
TYPE_CHECKING: a lazy import is still a dependency. The tools package (stress and fault
injection, the node tests' harness) sits beside the product: nothing of the product imports it,
but for the ``stress`` command, which loads it only when it runs."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lightglue_ros"
TOOLS = "lightglue_ros_tools"
TOOLS_USERS = {"lightglue_ros.cli.stress"}  # the one command that drives the tools

# Lowest first. A unit may import units of lower layers only (never its own layer's other units).
LAYERS: list[set[str]] = [
    {"version", "errors", "files", "config", "threads"},
    {"geometry", "images"},
    {"types"},  # the records and the stamp convention every layer above passes around
    {"weights", "features", "messages", "synthetic"},
    {"models"},
    {"inference"},
    {"pipeline", "mapping"},
    {"tracking"},
    {"slam"},  # above the front end: relocalization, loop closure, the map
    {"datasets", "viz"},
    {"evaluation"},
    {"bags", "gpucheck"},
    {"ros"},  # the ROS shell
    {"node"},
    {"cli", "(package)"},
]
SHELL = {"ros", "node", "cli"}
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "sensor_msgs",
                "geometry_msgs", "nav_msgs", "diagnostic_msgs", "std_srvs", "tf2_ros", "tf2_msgs",
                "launch", "launch_ros", "lightglue_ros_msgs"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports (modules, or a module's attributes)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    edges = {}
    for path in files:
        targets = {t for t in imports_of(path) if t in modules}
        edges[module_name(path)] = targets - {module_name(path)}
    return edges


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(package)"


def layer_of(name: str) -> int:
    for i, names in enumerate(LAYERS):
        if name in names:
            return i
    raise AssertionError(f"{name} is in no layer of test_architecture.LAYERS: place it")


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_run_one_way():
    wrong = []
    for module, targets in graph().items():
        src = unit(module)
        for target in targets:
            dst = unit(target)
            if dst != src and layer_of(dst) >= layer_of(src):
                wrong.append(f"{module} imports {target} ({src} -> {dst})")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("low", ["datasets", "bags", "viz", "inference"])
def test_low_packages_import_nothing_above_them(low):
    above = set().union(*LAYERS[layer_of(low):]) - {low}
    for module, targets in graph().items():
        if unit(module) == low:
            assert not {unit(t) for t in targets} & above, module


def test_the_core_never_imports_ros():
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if unit(module) in SHELL:
            continue
        roots = {name.split(".")[0] for name in imports_of(path)}
        assert not roots & ROS_PACKAGES, f"{module} imports {sorted(roots & ROS_PACKAGES)}"
        assert not any(unit(t) in SHELL for t in imports_of(path)
                       if t.startswith("lightglue_ros.")), module


def test_every_unit_has_a_layer():
    for module in graph():
        layer_of(unit(module))


def module_level_imports(path: Path) -> set[str]:
    """What ``path`` imports when it is imported: every import outside a function body."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and not child.level:
                found.add(child.module or "")
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def test_the_product_never_imports_the_tools():
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        uses = {name for name in imports_of(path) if name.split(".")[0] == TOOLS}
        if module in TOOLS_USERS:
            lazy = {name for name in module_level_imports(path) if name.split(".")[0] == TOOLS}
            assert uses and not lazy, f"{module} must import {TOOLS} inside its functions only"
        else:
            assert not uses, f"{module} imports {sorted(uses)}"


def test_the_tools_check_sees_a_module_level_import(tmp_path):
    eager = tmp_path / "eager.py"
    eager.write_text(f"from {TOOLS}.reliability import stress\n\ndef f():\n    import os\n")
    lazy = tmp_path / "lazy.py"
    lazy.write_text(f"def f():\n    from {TOOLS}.reliability import stress\n")
    assert module_level_imports(eager) == {f"{TOOLS}.reliability"}
    assert module_level_imports(lazy) == set()
