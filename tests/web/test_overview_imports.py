"""The web package has no import circle: blueprints never import the module that builds the app."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import web

WEB = Path(web.__file__).parent


def test_no_web_module_but_the_package_imports_web_app() -> None:
    offenders = []
    for path in sorted(WEB.glob("*.py")):
        if path.name == "__init__.py":
            continue  # the package exposes create_app
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "web.app":
                offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name == "web.app" for a in node.names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == [], f"blueprints import web.app (take it from web.context): {offenders}"


def test_every_blueprint_imports_on_its_own_before_the_app() -> None:
    """Each blueprint module can be imported first, in a fresh interpreter state for the web package."""
    saved = {k: v for k, v in sys.modules.items() if k == "web" or k.startswith("web.")}
    try:
        for name in [p.stem for p in sorted(WEB.glob("*.py")) if p.stem not in ("__init__", "app")]:
            for k in [k for k in sys.modules if k.startswith("web.")]:
                del sys.modules[k]
            module = importlib.import_module(f"web.{name}")
            assert module.__name__ == f"web.{name}"
            assert "web.app" not in sys.modules or name == "__init__", f"web.{name} pulled in web.app"
    finally:
        sys.modules.update(saved)
