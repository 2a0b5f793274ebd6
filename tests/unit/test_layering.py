"""The domain imports only the standard library; import-linter's contracts hold."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "services" / "celeris" / "domain"
FORBIDDEN_EVEN_IF_STDLIB = {"asyncio", "socket", "threading", "subprocess", "time"}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_domain_is_standard_library_only():
    offenders = []
    for path in DOMAIN.rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("celeris.domain") or name == "__future__":
                continue
            if top not in sys.stdlib_module_names or top in FORBIDDEN_EVEN_IF_STDLIB:
                offenders.append(f"{path.name}: {name}")
    assert not offenders, offenders


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
