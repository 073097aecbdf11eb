"""Provider dialects behind one interface, and the registry that builds them from settings."""
from __future__ import annotations

from typing import Callable, Mapping

import requests

from ..config import ProviderSettings, Settings
from .base import Capabilities, Download, Handle, OutputRef, Progress, Provider
from .litellm_gemini import LiteLLMGemini

Factory = Callable[[ProviderSettings, requests.Session], Provider]

FACTORIES: Mapping[str, Factory] = {
    "litellm-gemini": LiteLLMGemini,
}


def build_providers(settings: Settings, session: requests.Session) -> dict[str, Provider]:
    """Every enabled provider this build knows how to speak."""
    return {name: FACTORIES[name](cfg, session) for name, cfg in settings.providers.items() if name in FACTORIES}


__all__ = ["Capabilities", "Download", "Handle", "OutputRef", "Progress", "Provider", "build_providers", "FACTORIES"]
