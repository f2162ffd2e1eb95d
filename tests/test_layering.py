"""The import rule: conversations/ and handlers/ stay platform-neutral."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"telegram", "slack_bolt", "slack_sdk", "bot"}
SHADOWING = {"telegram", "slack_bolt", "slack_sdk"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_neutral_layers_import_no_sdk():
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN)
        for pkg in ("conversations", "handlers")
        for p in (ROOT / pkg).rglob("*.py")
        if _imports(p) & FORBIDDEN
    }
    assert offenders == {}


def test_no_module_shadows_an_sdk():
    for pkg in ("bot", "handlers", "conversations", "storage", "jobs", "config", "tests"):
        for p in (ROOT / pkg).rglob("*"):
            assert p.stem not in SHADOWING, f"{p} shadows an SDK package"
