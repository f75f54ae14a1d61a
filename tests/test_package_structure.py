"""The package's shape (issue 12): no import circle, only the commands reading the scripts' settings,
no private name used across modules. Read from the source with ast, so function-local imports
count too."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "trompa_mer"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in PACKAGE.rglob("*.py")}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(modules: dict) -> dict:
    """{module: {(imported module, name or None)}} over every import statement in it."""
    out = {}
    for module, tree in modules.items():
        is_package = (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists()
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {(alias.name, None) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, node, is_package)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add((sub, None) if sub in modules else (target, alias.name))
        out[module] = found
    return out


def _graph(modules: dict) -> dict:
    return {m: {t for t, _ in imports if t in modules and t != m} for m, imports in _imports(modules).items()}


def _cycles(graph: dict) -> list:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    graph = _graph(_modules())
    assert "trompa_mer.loop" in graph and graph["trompa_mer.loop"], "the graph was read"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    """Negative control: a two-module circle and a three-module circle are reported."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


def test_only_the_commands_read_the_settings():
    """The scripts' settings live in trompa_mer.commands (the installed command needs them);
    the commands pass their values in, the rest of the package never imports them."""
    modules = _modules()
    assert "trompa_mer.commands.settings" in modules
    readers = sorted(m for m, imports in _imports(modules).items()
                     if any(t in ("settings", "trompa_mer.commands.settings") or t.startswith("settings.")
                            for t, _ in imports))
    assert readers and all(m.startswith("trompa_mer.commands.") for m in readers), readers


def _private_uses(modules: dict) -> list:
    """(module, what) for every `from x import _name` and `alias._name` across modules."""
    uses = []
    for module, imports in _imports(modules).items():
        uses += [(module, f"{t}.{n}") for t, n in imports
                 if n and n.startswith("_") and not n.startswith("__") and t.startswith("trompa_mer")]
    for module, tree in modules.items():
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                is_package = (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists()
                target = _resolve(module, node, is_package)
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        aliases[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")):
                uses.append((module, f"{aliases[node.value.id]}.{node.attr}"))
    return sorted(set(uses))


def test_no_private_name_across_modules():
    assert _private_uses(_modules()) == []


def test_the_private_use_finder_finds_one():
    """Negative control on a small fake package."""
    fake = {"trompa_mer.a": ast.parse("from .b import _hidden\nfrom . import b\nb._other()\n"),
            "trompa_mer.b": ast.parse("def _hidden(): pass\ndef _other(): pass\n")}
    assert _private_uses(fake) == [("trompa_mer.a", "trompa_mer.b._hidden"), ("trompa_mer.a", "trompa_mer.b._other")]


@pytest.mark.parametrize("script", ["create_user.py", "get_hard_tracks.py", "retrain_model.py",
                                    "get_recommendations.py", "predict_emotion.py", "manage_users.py"])
def test_scripts_share_the_user_id_flag(script):
    text = (PACKAGE / "commands" / script).read_text(encoding="utf-8")
    assert '"--user_id"' not in text and ("user_parser(" in text or "add_user_id(" in text)
