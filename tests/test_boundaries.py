"""The layers: ``bot → handlers → services → models → common``, never back up, and no import cycle.

Also: handlers/, services/, models/ and common/ stay platform-neutral (no aiogram, wechatpy or
aiohttp), channels write no tables themselves, no source file grows past a size one person can
read, and no Chinese text hides outside a gettext call or a data file.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("bot", "handlers", "services", "models", "common")  # each may import only those after it
PLATFORM = ("aiogram", "wechatpy", "aiohttp")
NEUTRAL_PACKAGES = ("handlers", "services", "models", "common")
MAX_LINES = 500
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
GETTEXT_CALLS = frozenset({"_", "N_", "ngettext"})


def imported_modules(path: Path) -> list[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module:
                names.append(module)
                # "from handlers import activities" imports the module handlers.activities
                names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def project_files() -> dict[str, Path]:
    """Module name → file, for every module of the layered packages."""
    modules: dict[str, Path] = {}
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    modules = project_files()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        graph[name]
        for target in imported_modules(path):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def layer_of(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [f"{source} imports {target}" for source, targets in import_graph().items() for target in targets
              if layer_of(target) < layer_of(source)]
    assert upward == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_anywhere() -> None:
    # a package importing its own submodules (an __init__ re-exporting them) is not a cycle of modules
    graph = {source: {t for t in targets if not t.startswith(source + ".")} for source, targets in import_graph().items()}
    assert find_cycle(graph) is None


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", NEUTRAL_PACKAGES)
def test_neutral_packages_import_no_platform_code(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    offenders = [f"{path.relative_to(REPO)} imports {name}" for path in files for name in imported_modules(path)
                 if name.split(".")[0] in PLATFORM]
    assert offenders == []


SESSION_WRITES = frozenset({"add", "add_all", "delete", "merge"})
SQL_WRITES = frozenset({"insert", "update", "delete"})
SQL_MODULES = ("sqlalchemy", "sqlmodel")


def table_writes(path: Path) -> list[str]:
    """Calls that write rows: ``<…>session.add/add_all/delete/merge(…)``, and ``insert/update/delete``
    taken from sqlalchemy or sqlmodel (``from sqlalchemy import update`` or ``sa.update`` with
    ``import sqlalchemy as sa``). Other calls of those names (``redis.delete``) are not writes."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    sql_names: set[str] = set()  # local names bound to sqlalchemy's insert/update/delete
    sql_modules: set[str] = set()  # local names bound to sqlalchemy/sqlmodel modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in SQL_MODULES:
            sql_names.update(alias.asname or alias.name for alias in node.names if alias.name in SQL_WRITES)
            sql_modules.update(alias.asname or alias.name for alias in node.names if alias.name not in SQL_WRITES)
        elif isinstance(node, ast.Import):
            sql_modules.update(alias.asname or alias.name.split(".")[0] for alias in node.names
                               if alias.name.split(".")[0] in SQL_MODULES)

    def receiver_name(node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        return ""

    def root_name(node: ast.expr) -> str:
        while isinstance(node, ast.Attribute):
            node = node.value
        return node.id if isinstance(node, ast.Name) else ""

    hits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in sql_names:
            hits.append(node.lineno)
        elif isinstance(func, ast.Attribute):
            if func.attr in SESSION_WRITES and receiver_name(func.value).lower().endswith("session"):
                hits.append(node.lineno)
            elif func.attr in SQL_WRITES and root_name(func.value) in sql_modules:
                hits.append(node.lineno)
    return [f"{path.relative_to(REPO)}:{n}" for n in sorted(hits)]


@pytest.mark.parametrize("folder", ("bot/channels", "handlers"))
def test_channels_and_handlers_write_no_tables_themselves(folder: str) -> None:
    """Channel adapters convert in and out, handlers read and present: rows are written through services."""
    offenders = [hit for path in sorted((REPO / folder).rglob("*.py")) for hit in table_writes(path)]
    assert offenders == []


def test_the_table_write_checker_sees_writes_and_nothing_else() -> None:
    sample = REPO / "bot" / "channels" / "zz_sample_for_test.py"
    try:
        sample.write_text(
            "import sqlalchemy as sa\nfrom sqlmodel import delete as remove, select\n"
            "session.add(row)\n"             # 3: a write
            "self.db_session.merge(row)\n"   # 4: a write
            "sa.update(T)\n"                 # 5: a write
            "remove(T)\n"                    # 6: a write
            "self.redis.delete(key)\n"       # 7: not a table
            "log.info('%d update(s)', n)\n"  # 8: not a call of update
            "items.add(x)\n"                 # 9: a set, not a session
            "select(T)\n"                    # 10: a read
        )
        assert [hit.rsplit(":", 1)[1] for hit in table_writes(sample)] == ["3", "4", "5", "6"]
    finally:
        sample.unlink()


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    sample = REPO / "handlers" / "zz_sample_for_test.py"
    try:
        sample.write_text("import aiogram\nfrom bot.config import Settings\nfrom . import turn\nfrom .turn import Turn\n")
        assert imported_modules(sample) == ["aiogram", "bot.config", "bot.config.Settings", "handlers",
                                            "handlers.turn", "handlers.turn", "handlers.turn.Turn"]
    finally:
        sample.unlink()


@pytest.mark.parametrize("package", ("handlers", "services", "bot", "common", "models"))
def test_no_source_file_is_too_long_to_read(package: str) -> None:
    long = [f"{path.relative_to(REPO)}: {n} lines" for path in sorted((REPO / package).rglob("*.py"))
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert long == []


def cjk_literals_outside_gettext(path: Path) -> list[str]:
    """Chinese string literals that are not the text of a gettext call (docstrings don't count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in GETTEXT_CALLS:
            allowed.update(id(arg) for arg in node.args)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                allowed.add(id(first.value))
    return [f"{path.relative_to(REPO)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CJK.search(node.value)
            and id(node) not in allowed]


@pytest.mark.parametrize("package", ("handlers", "services", "bot"))
def test_no_chinese_text_outside_a_gettext_call_or_data_file(package: str) -> None:
    found = [hit for path in sorted((REPO / package).rglob("*.py")) for hit in cjk_literals_outside_gettext(path)]
    assert found == [], f"{len(found)} literals, e.g. {found[:8]}"


def test_the_cjk_checker_sees_a_bare_literal(tmp_path: Path) -> None:
    sample = REPO / "handlers" / "zz_sample_for_test.py"
    try:
        sample.write_text('"""模块说明"""\nfrom common.i18n import _\nA = _("好")\nB = "坏"\nC = f"也坏{A}"\n')
        assert [hit.rsplit(":", 1)[1] for hit in cjk_literals_outside_gettext(sample)] == ["4", "5"]
    finally:
        sample.unlink()


def test_registry_push_capability_matches_the_core() -> None:
    """Channels that cannot push are the ones whose notices the core holds for the next reply."""
    from bot.channels.registry import CHANNELS
    from services.notify import INLINE_ONLY_CHANNELS

    assert {channel.name for channel in CHANNELS if not channel.can_push} == INLINE_ONLY_CHANNELS
    assert len({channel.name for channel in CHANNELS}) == len(CHANNELS)
