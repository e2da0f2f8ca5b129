"""The floor plan: a folder imports only folders on lower floors (never up, never sideways).

Floors, lowest first: hmmn_ref < core < runtime, demo, evaluate < export < models < segment, bench.
tools/ and tests/ stand outside the plan. The scan reads every .py file with `ast` (not a grep), so
imports inside functions count, and relative imports are resolved to the folder they name.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = [["hmmn_ref"], ["core"], ["runtime", "demo", "evaluate"], ["export"], ["models"], ["segment", "bench"]]
FLOOR = {folder: level for level, folders in enumerate(FLOORS) for folder in folders}


def package_of(root: Path, path: Path) -> list[str]:
    """The dotted package a file belongs to, as installed: core/x.py -> ["hmmn_deploy", "core"]."""
    parts = list(path.relative_to(root).parent.parts)
    return parts if parts[0] == "hmmn_ref" else ["hmmn_deploy", *parts]


def folder_of(dotted: list[str]) -> str | None:
    """The project folder a module path names, or None for anything outside the floors."""
    if dotted[:1] == ["hmmn_ref"]:
        return "hmmn_ref"
    if dotted[:1] == ["hmmn_deploy"] and len(dotted) > 1 and dotted[1] in FLOOR:
        return dotted[1]
    return None


def imported_folders(node: ast.AST, package: list[str]) -> list[str]:
    """The floor folders one import statement reaches (`import a.b`, `from .. import x`, ...)."""
    if isinstance(node, ast.Import):
        targets = [alias.name.split(".") for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = package[: len(package) - node.level + 1] if node.level else []
        module = base + (node.module.split(".") if node.module else [])
        # `from hmmn_deploy import export` / `from .. import demo`: each name may be a folder.
        targets = [module + [alias.name] for alias in node.names] if len(module) == 1 else [module]
    else:
        return []
    return [folder for folder in map(folder_of, targets) if folder is not None]


def violations(root: Path) -> list[str]:
    """`file:line: import ...` for every import up or sideways across the floors under root."""
    found = []
    for folder, level in FLOOR.items():
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            package = package_of(root, path)
            for node in ast.walk(tree):
                for target in imported_folders(node, package):
                    if target != folder and FLOOR[target] >= level:
                        where = "sideways" if FLOOR[target] == level else "up"
                        found.append(f"{path.relative_to(root)}:{node.lineno}: imports {target} ({where}): "
                                     f"{ast.unparse(node)}")
    return found


def test_no_import_goes_up_or_sideways():
    found = violations(ROOT)
    assert not found, "imports across the floors " + " < ".join(", ".join(f) for f in FLOORS) + ":\n" + "\n".join(found)


def test_every_floor_folder_exists():
    # A renamed folder would silently drop out of the scan.
    assert all((ROOT / folder).is_dir() for folder in FLOOR)


@pytest.mark.parametrize("folder, source, culprit", [
    ("core", "import hmmn_deploy.runtime.session\n", "runtime (up)"),
    ("core", "from ..export import cli\n", "export (up)"),
    ("export", "from hmmn_deploy import models\n", "models (up)"),
    ("bench", "from ..segment.reader import resize_frame\n", "segment (sideways)"),
    ("runtime", "from .. import demo\n", "demo (sideways)"),
    ("hmmn_ref", "from hmmn_deploy.core import cli\n", "core (up)"),
])
def test_scan_names_file_line_and_import(tmp_path, folder, source, culprit):
    for name in FLOOR:
        (tmp_path / name).mkdir()
    (tmp_path / folder / "bad.py").write_text("import os\n" + source)
    (found,) = violations(tmp_path)
    assert found.startswith(f"{folder}/bad.py:2: imports {culprit}")


def test_scan_reads_imports_inside_functions(tmp_path):
    for name in FLOOR:
        (tmp_path / name).mkdir()
    (tmp_path / "core" / "late.py").write_text("def f():\n    if True:\n        from ..export import cli\n")
    assert violations(tmp_path) == ["core/late.py:3: imports export (up): from ..export import cli"]


@pytest.mark.parametrize("folder, source", [
    ("segment", "from ..models import choice\nfrom hmmn_ref import protocol\nfrom . import cli\n"),
    ("export", "from ..core.cli import main\nimport hmmn_deploy.runtime\nfrom .manifest import x\n"),
    ("core", "from .. import hmmn_other\nimport numpy\n"),
])
def test_scan_allows_downward_and_same_folder(tmp_path, folder, source):
    for name in FLOOR:
        (tmp_path / name).mkdir()
    (tmp_path / folder / "ok.py").write_text(source)
    assert violations(tmp_path) == []
