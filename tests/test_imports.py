"""The house plan's import rules, read from the source (every import, function-local ones too):
data flows one way, the data stage never reaches up, and nothing finds a model's layers by name."""

import ast
from pathlib import Path

import musictf

PACKAGE = Path(musictf.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the musictf modules it imports, anywhere in its file."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif (
                isinstance(node, ast.ImportFrom) and node.module and node.level == 0
            ):  # a submodule, or a name
                imported |= {
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                }
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


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


def test_no_import_cycle_among_musictf_modules():
    assert _cycles(import_graph()) == []


def test_a_cycle_would_be_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_data_stage_never_imports_a_later_stage():
    below_the_data_stage = {"musictf.files", "musictf.errors"}
    for module, imported in import_graph().items():
        if module.startswith("musictf.data"):
            reaching_up = {
                target
                for target in imported
                if not target.startswith("musictf.data") and target not in below_the_data_stage
            }
            assert reaching_up == set(), module


def test_run_files_and_the_protocol_do_not_import_the_experiments():
    graph = import_graph()
    for module in ("musictf.rundir", "musictf.evaluate"):
        assert not {target for target in graph[module] if target.startswith("musictf.experiments")}, module


def test_no_layer_is_found_by_name():
    users = [path.name for path in PACKAGE.rglob("*.py") if "get_layer(" in path.read_text()]
    assert users == []
