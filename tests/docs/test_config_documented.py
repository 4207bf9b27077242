"""Every configuration key and every slurper type is documented (docs/configuration.md, docs/slurpers/)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from rexmon import config
from slurpers.registry import SlurperRegistry

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SECTIONS: dict[str, type[Any]] = {
    "archive": config.ArchiveConfig,
    "database": config.DatabaseConfig,
    "scheduler": config.SchedulerConfig,
    "web": config.WebConfig,
    "alarms": config.AlarmsConfig,
    "alarm": config.AlarmRule,
    "notify": config.NotifyTarget,
    "watchdog": config.WatchdogConfig,
    "dashboard": config.Dashboard,
    "experiment": config.Experiment,
}
#: keys every [[slurper]] takes, whatever its type
SLURPER_COMMON = ("id", "type", "interval", "timeout", "enabled")
REGISTRY = SlurperRegistry.from_entry_points()


def key_names(cls: type[Any], prefix: str = "") -> list[str]:
    """Config key names of a (pydantic) dataclass: aliases where set, nested tables as a.b."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default
        alias = getattr(default, "alias", None) if default is not dataclasses.MISSING else None
        name = alias or f.name
        out.append(prefix + name)
        nested = _dataclass_in(f.type, cls)
        if nested is not None:
            out += key_names(nested, prefix + name + ".")
    return out


def _dataclass_in(annotation: Any, owner: type[Any]) -> type[Any] | None:
    """A dataclass named in a field's annotation (``StompSettings | None``), if any."""
    import sys
    import typing

    if isinstance(annotation, str):
        module = sys.modules[owner.__module__]
        try:
            annotation = eval(annotation, vars(module))  # noqa: S307 - our own annotations
        except Exception:
            return None
    candidates = [annotation, *typing.get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and dataclasses.is_dataclass(c):
            return c
    return None


def documented(text: str, key: str) -> bool:
    """The key appears as code (`key`, `a.b`) or as a TOML line (key = ...) in the text."""
    last = key.rsplit(".", 1)[-1]
    return bool(
        re.search(rf"`{re.escape(key)}`", text)
        or re.search(rf"`{re.escape(last)}`", text)
        or re.search(rf"^\s*#?\s*{re.escape(last)}\s*=", text, re.M)
    )


def section_text(text: str, heading: str) -> str:
    """The part of a page under the ``## `` heading that names ``heading`` (e.g. ``[archive]``)."""
    parts = re.split(r"^## ", text, flags=re.M)
    for part in parts[1:]:
        if heading in part.splitlines()[0]:
            return part
    pytest.fail(f"docs/configuration.md has no '## ' heading naming {heading}")


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_key_of_every_section_is_in_configuration_md(section: str) -> None:
    arrays = ("alarm", "notify", "dashboard", "experiment")
    heading = f"[[{section}]]" if section in arrays else f"[{section}]"
    text = section_text((DOCS / "configuration.md").read_text(encoding="utf-8"), heading)
    missing = [k for k in key_names(SECTIONS[section]) if not documented(text, k)]
    assert not missing, f"docs/configuration.md does not document {heading} keys: {missing}"


def test_slurper_common_keys_are_in_configuration_md() -> None:
    text = section_text((DOCS / "configuration.md").read_text(encoding="utf-8"), "[[slurper]]")
    missing = [k for k in SLURPER_COMMON if not documented(text, k)]
    assert not missing, f"docs/configuration.md does not document the [[slurper]] keys {missing}"


@pytest.mark.parametrize("slurper_type", REGISTRY.names())
def test_every_slurper_type_has_a_page_with_every_setting(slurper_type: str) -> None:
    page = DOCS / "slurpers" / f"{slurper_type}.md"
    try:
        cls = REGISTRY.get(slurper_type)
    except LookupError as exc:
        pytest.fail(f"slurper type {slurper_type!r} is registered but cannot be documented: {exc}")
    assert page.is_file(), f"slurper type {slurper_type!r} has no page {page.relative_to(ROOT)}"
    text = page.read_text(encoding="utf-8")
    missing = [k for k in key_names(cls.Settings) if not documented(text, k)]
    assert not missing, f"{page.relative_to(ROOT)} does not document the settings {missing}"
    index = (DOCS / "slurpers" / "index.md").read_text(encoding="utf-8")
    assert f"{slurper_type}.md" in index, f"docs/slurpers/index.md does not link {slurper_type}.md"
    configuration = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert f"slurpers/{slurper_type}.md" in configuration, (
        f"docs/configuration.md does not point to docs/slurpers/{slurper_type}.md"
    )


def test_readme_links_the_docs_and_shows_the_screenshots() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links {target}, which does not exist"
    for shot in ("docs/screenshots/overview.png", "docs/screenshots/graph.png"):
        assert shot in readme and (ROOT / shot).is_file()
    for doc in ("architecture", "configuration", "deployment", "alarms", "downtime"):
        assert f"docs/{doc}.md" in readme
