"""handlers/, services/ and models/ stay platform-neutral: no aiogram, wechatpy or bot imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("aiogram", "wechatpy", "bot")
NEUTRAL_PACKAGES = ("handlers", "services", "models")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", NEUTRAL_PACKAGES)
def test_neutral_packages_import_no_platform_code(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    offenders = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import aiogram\nfrom bot.config import Settings\nfrom . import sibling\n")
    assert imported_modules(sample) == ["aiogram", "bot.config"]


def _bot_module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def bot_import_graph() -> dict[str, set[str]]:
    """bot module → the bot modules it imports (at any depth in the file, lazy imports included)."""
    files = {_bot_module(path): path for path in (REPO / "bot").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # "from bot.channels import telegram" imports the submodule when there is one
                targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names}
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def test_no_import_cycle_in_bot() -> None:
    graph = bot_import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_cycle_checker_sees_the_cli_commands() -> None:
    graph = bot_import_graph()
    assert "bot.commands.wechat" in graph["bot.cli"]
    assert "bot.channels.wechat.channel" in graph["bot.channels.registry"]


def test_no_bot_source_file_is_over_500_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in (REPO / "bot").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert long == {}


def test_registry_push_capability_matches_the_core() -> None:
    """Channels that cannot push are the ones whose notices the core holds for the next reply."""
    from bot.channels.registry import CHANNELS
    from services.notify import INLINE_ONLY_CHANNELS

    assert {channel.name for channel in CHANNELS if not channel.can_push} == INLINE_ONLY_CHANNELS
    assert len({channel.name for channel in CHANNELS}) == len(CHANNELS)
