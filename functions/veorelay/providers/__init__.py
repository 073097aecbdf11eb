"""Provider dialects behind one interface, and the registry that builds them from settings.

A dialect's module is imported when its provider is first built or looked up (FACTORIES), not
with this package: a function instance loads only the dialects its settings enable.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping

import requests

from veorelay.config import ProviderSettings, Settings
from veorelay.providers.base import Capabilities, Download, Handle, InputImages, OutputRef, Progress, Provider, ProviderEnv

Factory = Callable[[ProviderSettings, requests.Session, ProviderEnv], Provider]


class _Dialects(Mapping[str, Factory]):
    """provider name -> its class, the class's module imported on first lookup."""

    def __init__(self, where: dict[str, tuple[str, str]]):
        self._where = where

    def __getitem__(self, name: str) -> Factory:
        module, cls = self._where[name]
        factory: Factory = getattr(importlib.import_module(f"veorelay.providers.{module}"), cls)
        return factory

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


FACTORIES: Mapping[str, Factory] = _Dialects({
    "litellm-gemini": ("litellm_gemini", "LiteLLMGemini"),
    "newapi": ("newapi", "NewApi"),
    "genaipro": ("genaipro", "Genaipro"),
    "flow": ("flow", "Flow"),
    "gemini": ("gemini", "Gemini"),
    "vertex": ("vertex", "Vertex"),
})


def build_providers(settings: Settings, session: requests.Session, inputs: InputImages | None = None) -> dict[str, Provider]:
    """Every enabled provider this build knows how to speak. `inputs` reads the images jobs
    were accepted with (images.BucketInputs)."""
    env = ProviderEnv(inputs=inputs, bucket=settings.bucket, project=settings.project, location=settings.location,
                      catalog=settings.catalog, events_url=settings.push.events_url)
    return {name: FACTORIES[name](cfg, session, env) for name, cfg in settings.providers.items() if name in FACTORIES}


__all__ = [
    "FACTORIES", "Capabilities", "Download", "Handle", "InputImages", "OutputRef", "Progress", "Provider", "ProviderEnv", "build_providers",
]
