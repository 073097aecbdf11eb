"""Settings, read once from the environment into a frozen object.

Domain code never reads os.environ: it is handed a Settings (or the part it needs).
"""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Mapping

from veorelay.core.api_keys import AuthConfigError, parse_api_keys

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
    "vertex": ("PROJECT", "LOCATION", "ACCESS_TOKEN", "WRITE_TO_BUCKET"),
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
    """How running jobs are checked; poll_schedule.py explains the schedule these shape."""

    initial_delay_s: float = 60.0  # the first check comes no later than this
    min_delay_s: float = 2.0  # shortest gap between two checks of a job
    max_delay_s: float = 30.0  # longest gap (also past the end of the learned spread)
    delay_cost_checks: float = 1.3  # one second of detection delay is worth this many checks
    max_checks: float = 10.0  # cap on a job's expected checks, for very wide spreads
    prior_median_s: float | None = None  # overrides poll_schedule's prior per model
    prior_sigma: float | None = None
    stats_ttl_s: float = 300.0  # an instance re-reads learned durations this often

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "PollSettings":
        def number(name: str, default: float | None) -> float | None:
            value = env.get(f"VEO_POLL_{name}")
            return float(value) if value else default

        d = cls()
        return cls(
            initial_delay_s=number("INITIAL_DELAY_SECONDS", d.initial_delay_s),
            min_delay_s=number("MIN_DELAY_SECONDS", d.min_delay_s),
            max_delay_s=number("MAX_DELAY_SECONDS", d.max_delay_s),
            delay_cost_checks=number("DELAY_COST_CHECKS", d.delay_cost_checks),
            max_checks=number("MAX_CHECKS", d.max_checks),
            prior_median_s=number("PRIOR_MEDIAN_SECONDS", None),
            prior_sigma=number("PRIOR_SIGMA", None),
            stats_ttl_s=number("STATS_TTL_SECONDS", d.stats_ttl_s),
        )


# Delays before each webhook attempt (the first is immediate): about three days in all.
DEFAULT_WEBHOOK_RETRY_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_SIGNED_URL_TTL_S = 7 * 24 * 3600  # the V4 signature's own limit
MAX_TASK_DELAY_S = 30 * 24 * 3600  # Cloud Tasks refuses a schedule_time further ahead


@dataclass(frozen=True)
class WebhookSettings:
    """Webhook delivery (notify.py) and the signed URLs in events (signed_urls.py)."""

    # client id -> its secrets, current first; all sign while a secret is rotated.
    secrets: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    default_secret: str | None = field(default=None, repr=False)  # for clients not in `secrets`
    retry_schedule_s: tuple[float, ...] = DEFAULT_WEBHOOK_RETRY_SCHEDULE_S
    progress_interval_s: float = 30.0  # at most one job.progress event per job in this window
    signed_url_ttl_s: int = 24 * 3600
    signing_service_account: str | None = None  # default: the function's own service account

    def secrets_for(self, client_id: str) -> tuple[str, ...]:
        return self.secrets.get(client_id) or ((self.default_secret,) if self.default_secret else ())

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "WebhookSettings":
        schedule = env.get("VEO_WEBHOOK_RETRY_SCHEDULE")
        ttl = int(env.get("VEO_SIGNED_URL_TTL_SECONDS") or 24 * 3600)
        if not 1 <= ttl <= MAX_SIGNED_URL_TTL_S:
            raise ConfigError(f"VEO_SIGNED_URL_TTL_SECONDS must be between 1 and {MAX_SIGNED_URL_TTL_S}")
        return cls(
            secrets=_webhook_secrets(env.get("VEO_WEBHOOK_SECRETS")),
            default_secret=env.get("VEO_WEBHOOK_SECRET") or None,
            retry_schedule_s=_retry_schedule(schedule) if schedule else DEFAULT_WEBHOOK_RETRY_SCHEDULE_S,
            progress_interval_s=float(env.get("VEO_WEBHOOK_PROGRESS_INTERVAL_SECONDS") or 30),
            signed_url_ttl_s=ttl,
            signing_service_account=env.get("VEO_SIGNING_SERVICE_ACCOUNT") or None,
        )


def _webhook_secrets(raw: str | None) -> dict[str, tuple[str, ...]]:
    """VEO_WEBHOOK_SECRETS = {"client": ["whsec_new", "whsec_old"]}. Errors never quote a secret."""
    if not raw:
        return {}
    try:
        table = json.loads(raw)
    except ValueError:
        raise ConfigError("VEO_WEBHOOK_SECRETS is not valid JSON") from None
    if not isinstance(table, dict):
        raise ConfigError('VEO_WEBHOOK_SECRETS must be a JSON object {"client id": ["whsec_...", ...]}')
    secrets = {}
    for client, values in table.items():
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and _is_webhook_secret(v) for v in values):
            raise ConfigError(f"VEO_WEBHOOK_SECRETS[{client!r}] must be a non-empty list of whsec_<base64> secrets")
        secrets[str(client)] = tuple(values)
    return secrets


def _is_webhook_secret(value: str) -> bool:
    try:
        return len(base64.b64decode(value.removeprefix("whsec_"), validate=True)) >= 16
    except ValueError:
        return False


def _retry_schedule(raw: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError("VEO_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, e.g. 0,5,300") from None
    if not all(0 <= d <= MAX_TASK_DELAY_S for d in delays):
        raise ConfigError(f"VEO_WEBHOOK_RETRY_SCHEDULE delays must be between 0 and {MAX_TASK_DELAY_S} seconds")
    return delays


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
    webhooks: WebhookSettings = WebhookSettings()
    storage_emulator_host: str | None = None  # local stack: signed URLs point at the emulator
    # Jobs from request objects dropped in the bucket belong to this client (request_objects.py).
    requests_client_id: str = "bucket"
    log_level: str = "INFO"
    # client id -> sha256 hex digests of its API keys (auth.py); empty = every request refused
    api_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    auth_disabled: bool = False  # VEO_AUTH_DISABLED=true: no API keys asked (local experiments only)
    sweep_stall_s: float = 600.0  # sweep.py: a job untouched this long has stopped moving
    http_timeout_s: float | None = None  # ceiling on every outbound read timeout (tests: seconds)

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
            poll=PollSettings.from_env(env),
            webhooks=WebhookSettings.from_env(env),
            webhook_timeout_s=float(env.get("VEO_WEBHOOK_TIMEOUT_SECONDS") or 15),
            storage_emulator_host=env.get("STORAGE_EMULATOR_HOST") or None,
            requests_client_id=env.get("VEO_REQUESTS_CLIENT_ID") or "bucket",
            log_level=env.get("VEO_LOG_LEVEL", "INFO"),
            api_keys=_api_keys(env.get("VEO_API_KEYS")),
            auth_disabled=_flag(env.get("VEO_AUTH_DISABLED")),
            sweep_stall_s=float(env.get("VEO_SWEEP_STALL_SECONDS") or 600),
            http_timeout_s=float(env["VEO_HTTP_TIMEOUT_SECONDS"]) if env.get("VEO_HTTP_TIMEOUT_SECONDS") else None,
        )

    def task_url(self, target: str) -> str:
        try:
            return self.task_urls[target]
        except KeyError:
            raise ConfigError(f"VEO_{target.upper()}_URL is not set") from None

    def secret_values(self) -> tuple[str, ...]:
        """Every credential this deployment holds, for redaction.py to scrub from logs and errors."""
        values = [self.webhook_secret, self.webhooks.default_secret, *(s for ss in self.webhooks.secrets.values() for s in ss)]
        for p in self.providers.values():
            values.append(p.api_key)
            values.extend(v for k, v in p.extras.items() if k in SECRET_EXTRAS)
        return tuple(sorted({v for v in values if v}, key=len, reverse=True))


def _provider_settings(name: str, env: Mapping[str, str], location: str) -> ProviderSettings:
    prefix = provider_env_prefix(name)
    base_url = env.get(prefix + "BASE_URL") or DEFAULT_BASE_URLS[name].format(location=env.get(prefix + "LOCATION", location))
    extras = {key: env[prefix + key] for key in PROVIDER_EXTRAS.get(name, ()) if _secret(env.get(prefix + key))}
    return ProviderSettings(name=name, base_url=base_url.rstrip("/"), api_key=_secret(env.get(prefix + "API_KEY")), extras=extras)


def _api_keys(raw: str | None) -> dict[str, tuple[str, ...]]:
    try:
        return parse_api_keys(raw)
    except AuthConfigError as exc:
        raise ConfigError(str(exc)) from None


def _secret(value: str | None) -> str | None:
    """Secret Manager placeholders (infra creates every secret as `UNSET`) count as missing."""
    return None if not value or value.strip() in ("", "UNSET") else value


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
