"""Provider dialects behind one interface, and the registry that builds them from settings."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import requests

from veorelay.config import ProviderSettings, Settings
from veorelay.providers.base import Capabilities, Download, Handle, InputImages, OutputRef, Progress, Provider, ProviderEnv
from veorelay.providers.flow import Flow
from veorelay.providers.gemini import Gemini
from veorelay.providers.genaipro import Genaipro
from veorelay.providers.litellm_gemini import LiteLLMGemini
from veorelay.providers.newapi import NewApi
from veorelay.providers.vertex import Vertex

Factory = Callable[[ProviderSettings, requests.Session, ProviderEnv], Provider]

FACTORIES: Mapping[str, Factory] = {
    "litellm-gemini": LiteLLMGemini,
    "newapi": NewApi,
    "genaipro": Genaipro,
    "flow": Flow,
    "gemini": Gemini,
    "vertex": Vertex,
}


def build_providers(settings: Settings, session: requests.Session, inputs: InputImages | None = None) -> dict[str, Provider]:
    """Every enabled provider this build knows how to speak. `inputs` reads the images jobs
    were accepted with (images.BucketInputs)."""
    env = ProviderEnv(inputs=inputs, bucket=settings.bucket, project=settings.project, location=settings.location)
    return {name: FACTORIES[name](cfg, session, env) for name, cfg in settings.providers.items() if name in FACTORIES}


__all__ = [
    "FACTORIES", "Capabilities", "Download", "Handle", "InputImages", "OutputRef", "Progress", "Provider", "ProviderEnv", "build_providers",
]
