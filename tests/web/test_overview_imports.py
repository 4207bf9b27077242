"""The web package has no import circle: blueprints never import the module that builds the app."""

from __future__ import annotations

import ast
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
