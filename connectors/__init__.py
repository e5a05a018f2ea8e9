"""Platform connectors. A new platform is one module here plus one line in `PLATFORMS`."""

from __future__ import annotations

from importlib import import_module

from connectors.base import Platform

# name -> module that defines `PLATFORM: Platform`. Imported on demand so that a
# deployment using one platform never needs the other's client library.
_MODULES: dict[str, str] = {
    "mastodon": "connectors.mastodon",
    "x": "connectors.x",
}


def platform_names() -> list[str]:
    return sorted(_MODULES)


def get_platform(name: str) -> Platform:
    """The platform called `name`; KeyError if there is none."""
    module = import_module(_MODULES[name])
    platform: Platform = module.PLATFORM
    return platform
