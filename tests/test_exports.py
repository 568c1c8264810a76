"""The public API is what ``__all__`` says, both ways: every name in it exists, and every public
name a package or module defines or re-exports is in it. Docs import only from there."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import tenantry
from tests.conftest import ROOT

#: The packages a user imports from (``tenantry`` and its domains), and the foot modules.
PACKAGES = [
    "tenantry",
    "tenantry.access",
    "tenantry.ai",
    "tenantry.alerts",
    "tenantry.api",
    "tenantry.audit",
    "tenantry.cache",
    "tenantry.cli",
    "tenantry.connections",
    "tenantry.dashboard",
    "tenantry.db",
    "tenantry.http",
    "tenantry.keys",
    "tenantry.lifecycle",
    "tenantry.metadata",
    "tenantry.monitoring",
    "tenantry.passkeys",
    "tenantry.performance",
    "tenantry.security",
    "tenantry.sessions",
    "tenantry.tenants",
    "tenantry.threats",
    "tenantry.workflows",
]
MODULES = [
    "tenantry.actions",
    "tenantry.config",
    "tenantry.context",
    "tenantry.errors",
    "tenantry.levels",
    "tenantry.principal",
    "tenantry.tracing",
]


def test_every_package_is_listed() -> None:
    found = {
        f"tenantry.{p.name}" for p in Path(tenantry.__file__).parent.iterdir() if p.is_dir()
    } - {"tenantry.__pycache__"}
    assert found <= set(PACKAGES), f"add {sorted(found - set(PACKAGES))} to PACKAGES"


@pytest.mark.parametrize("name", PACKAGES + MODULES)
def test_all_lists_only_existing_names(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(set(module.__all__)) == sorted(module.__all__), "duplicates in __all__"
    for member in module.__all__:
        assert hasattr(module, member), f"{name}.__all__ names {member!r}, which is missing"


def _public_bindings(name: str) -> set[str]:
    """Public names the module's top level defines, and (a package) imports from tenantry."""
    module = importlib.import_module(name)
    source = Path(module.__file__ or "")
    package = source.name == "__init__.py"
    names: set[str] = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif (
            package
            and isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("tenantry")
        ):
            names |= {a.asname or a.name for a in node.names}
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("name", PACKAGES + MODULES)
def test_everything_public_is_in_all(name: str) -> None:
    module = importlib.import_module(name)
    missing = _public_bindings(name) - set(module.__all__)
    assert not missing, f"{name} exports {sorted(missing)} without listing them in __all__"


def test_the_package_exports_its_own_members() -> None:
    for name in tenantry.__all__:
        member = getattr(tenantry, name)
        module = getattr(member, "__module__", "tenantry")
        assert module.startswith("tenantry"), f"tenantry.{name} comes from {module}"


def test_every_error_is_a_tenantry_error() -> None:
    from tenantry import errors  # noqa: PLC0415

    for name in errors.__all__:
        if name == "Issue":  # what an error lists, not an error
            continue
        assert issubclass(getattr(errors, name), errors.TenantryError)


IMPORT = re.compile(r"^\s*from (tenantry[\w.]*) import", re.MULTILINE)


@pytest.mark.parametrize(
    "path", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_docs_import_only_public_packages(path: Path) -> None:
    """Examples import from ``tenantry``, a domain package or a foot module, never internals."""
    public = set(PACKAGES) | set(MODULES)
    internal = sorted({m for m in IMPORT.findall(path.read_text()) if m not in public})
    assert not internal, f"{path.name} imports from internal modules {internal}"
