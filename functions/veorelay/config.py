"""Settings, read once from the environment into a frozen object.

Domain code never reads os.environ: it is handed a Settings (or the part it needs).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

PROVIDER_NAMES: tuple[str, ...] = ("litellm-gemini", "newapi", "genaipro", "flow", "gemini", "vertex")

DEFAULT_BASE_URLS: Mapping[str, str] = {
    "litellm-gemini": "https://api.thucchien.ai",
    "newapi": "https://computevault.unodetech.xyz",
    "genaipro": "https://genaipro.vn",
    "flow": "https://flow-api.nanoai.pics",
    "gemini": "https://generativelanguage.googleapis.com",
    "vertex": "https://{location}-aiplatform.googleapis.com",
}

# Provider-specific settings beyond base URL and key, by env suffix.
PROVIDER_EXTRAS: Mapping[str, tuple[str, ...]] = {
    "flow": ("GOOGLE_BASE_URL", "GOOGLE_TOKEN", "PROJECT_ID"),
    "vertex": ("PROJECT", "LOCATION", "ACCESS_TOKEN"),
}
# Extras that are credentials: kept out of repr() like the API key.
SECRET_EXTRAS = frozenset({"GOOGLE_TOKEN", "ACCESS_TOKEN"})

# Internal functions invoked by Cloud Tasks; each needs its URL as a task target.
TASK_TARGETS: tuple[str, ...] = ("submit_job", "poll_job", "finalize_job", "deliver_webhook", "stream_job")


def provider_env_prefix(provider: str) -> str:
    return "VEO_" + provider.upper().replace("-", "_") + "_"


class ConfigError(ValueError):
    """The environment does not describe a runnable deployment."""


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    extras: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class QueueSettings:
    poll: str = "veo-poll"
    finalize: str = "veo-finalize"
    webhooks: str = "veo-webhooks"
    stream: str = "veo-stream"
    submit_prefix: str = "veo-submit-"

    def submit(self, provider: str) -> str:
        return self.submit_prefix + provider


@dataclass(frozen=True)
class PollSettings:
    """The fixed part of the polling schedule (see polling.py for how it is used)."""

    initial_delay_s: float = 20.0
    min_delay_s: float = 5.0
    max_delay_s: float = 30.0


@dataclass(frozen=True)
class Settings:
    project: str
    location: str
    bucket: str
    output_prefix: str
    default_provider: str
    providers: Mapping[str, ProviderSettings]
    task_urls: Mapping[str, str]
    webhook_secret: str | None = field(default=None, repr=False)
    tasks_service_account: str | None = None
    tasks_emulator_host: str | None = None
    allow_loopback_urls: bool = False
    job_deadline_s: int = 1800
    download_attempts: int = 3
    upload_chunk_bytes: int = 8 * 1024 * 1024
    webhook_timeout_s: float = 15.0
    queues: QueueSettings = QueueSettings()
    poll: PollSettings = PollSettings()
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or ""
        if not project:
            raise ConfigError("GOOGLE_CLOUD_PROJECT is not set")
        location = env.get("VEO_LOCATION", "us-central1")
        bucket = env.get("VEO_BUCKET", "")
        if not bucket:
            raise ConfigError("VEO_BUCKET is not set")

        enabled = [p.strip() for p in env.get("VEO_PROVIDERS_ENABLED", ",".join(PROVIDER_NAMES)).split(",") if p.strip()]
        unknown = sorted(set(enabled) - set(PROVIDER_NAMES))
        if unknown:
            raise ConfigError(f"VEO_PROVIDERS_ENABLED names unknown providers: {', '.join(unknown)}")
        providers = {name: _provider_settings(name, env, location) for name in enabled}

        default_provider = env.get("VEO_DEFAULT_PROVIDER", "litellm-gemini")
        if default_provider not in providers:
            raise ConfigError(f"VEO_DEFAULT_PROVIDER {default_provider!r} is not an enabled provider")

        task_urls = {t: env[f"VEO_{t.upper()}_URL"] for t in TASK_TARGETS if env.get(f"VEO_{t.upper()}_URL")}
        return cls(
            project=project,
            location=location,
            bucket=bucket,
            output_prefix=env.get("VEO_OUTPUT_PREFIX", "videos").strip("/"),
            default_provider=default_provider,
            providers=providers,
            task_urls=task_urls,
            webhook_secret=_secret(env.get("VEO_WEBHOOK_SECRET")),
            tasks_service_account=env.get("VEO_TASKS_SERVICE_ACCOUNT") or None,
            tasks_emulator_host=env.get("CLOUD_TASKS_EMULATOR_HOST") or None,
            allow_loopback_urls=_flag(env.get("VEO_ALLOW_LOOPBACK_URLS")),
            job_deadline_s=int(env.get("VEO_JOB_DEADLINE_SECONDS", "1800")),
            download_attempts=int(env.get("VEO_DOWNLOAD_ATTEMPTS", "3")),
            upload_chunk_bytes=int(env.get("VEO_UPLOAD_CHUNK_BYTES", str(8 * 1024 * 1024))),
            poll=PollSettings(
                initial_delay_s=float(env.get("VEO_POLL_INITIAL_DELAY_SECONDS", "20")),
                min_delay_s=float(env.get("VEO_POLL_MIN_DELAY_SECONDS", "5")),
                max_delay_s=float(env.get("VEO_POLL_MAX_DELAY_SECONDS", "30")),
            ),
            log_level=env.get("VEO_LOG_LEVEL", "INFO"),
        )

    def task_url(self, target: str) -> str:
        try:
            return self.task_urls[target]
        except KeyError:
            raise ConfigError(f"VEO_{target.upper()}_URL is not set") from None


def _provider_settings(name: str, env: Mapping[str, str], location: str) -> ProviderSettings:
    prefix = provider_env_prefix(name)
    base_url = env.get(prefix + "BASE_URL") or DEFAULT_BASE_URLS[name].format(location=env.get(prefix + "LOCATION", location))
    extras = {key: env[prefix + key] for key in PROVIDER_EXTRAS.get(name, ()) if _secret(env.get(prefix + key))}
    return ProviderSettings(name=name, base_url=base_url.rstrip("/"), api_key=_secret(env.get(prefix + "API_KEY")), extras=extras)


def _secret(value: str | None) -> str | None:
    """Secret Manager placeholders (infra creates every secret as `UNSET`) count as missing."""
    return None if not value or value.strip() in ("", "UNSET") else value


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
