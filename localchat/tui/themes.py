"""Themes: one TOML file each in the top-level themes/ folder (shipped inside the package as localchat/themes)."""

from __future__ import annotations

import sys
from pathlib import Path

from textual.theme import Theme

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIELDS = {"name", "dark", "primary", "secondary", "accent", "foreground", "background", "surface", "panel"}
FIELDS |= {"success", "warning", "error"}


def theme_dirs() -> list[Path]:
    package = Path(__file__).resolve().parent.parent
    return [package / "themes", package.parent / "themes"]  # installed wheel; source checkout


def load_themes() -> list[Theme]:
    themes = []
    for directory in theme_dirs():
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            unknown = set(data) - FIELDS
            if unknown or "name" not in data or "primary" not in data:
                continue  # a broken theme file must not stop the app
            themes.append(Theme(**data))
        if themes:
            break
    return themes
