"""Settings, read once from the environment into frozen objects.

Domain code never reads os.environ: it is handed a Settings (or the part it needs).

How the environment becomes Settings, in one place:
  * `ENVIRONMENT` names every variable this module reads, with its kind: its type and limits,
    as `Environment` (pydantic-settings) checks them. Its one source, `EnvironmentSource`,
    looks each of those names up in the mapping it is given (os.environ in production) and
    reads nothing else: no .env file, no secrets directory.
  * Cold starts: a valid environment is read without pydantic (the quick reading vouches only
    for values pydantic reads the same way, to the same value); anything else, every refusal
    included, is pydantic's, built then (read_environment).
  * A value that is empty, or the Secret Manager placeholder `UNSET` (infra creates every
    secret with that first version), counts as not set, for every variable.
  * A bad value stops the function at start with a ConfigError naming the variable. The error
    never quotes the value: it may be a secret.
  * `Settings.from_env` turns the validated Environment into the nested, frozen settings below;
    a variable that is not set leaves the setting's default (the defaults live on the settings
    classes, once).
"""
from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from veorelay.core.api_keys import is_client_id, parse_api_keys
from veorelay.core.budget import BudgetLimits
from veorelay.core.catalog import Catalog, CatalogError, merge_catalog, parse_catalog

if TYPE_CHECKING:
    from pydantic import AfterValidator
    from pydantic_settings import BaseSettings

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
    "vertex": ("PROJECT", "LOCATION", "ACCESS_TOKEN", "WRITE_TO_BUCKET", "PUBSUB_TOPIC"),
    # Completion events (docs/PROVIDERS.md "Completion events (push)"): off | static | request.
    "gemini": ("PUSH",),
    "litellm-gemini": ("PUSH",),
}
# Extras that are credentials: kept out of repr() like the API key.
SECRET_EXTRAS = frozenset({"GOOGLE_TOKEN", "ACCESS_TOKEN"})

# Internal functions invoked by Cloud Tasks; each needs its URL as a task target.
TASK_TARGETS: tuple[str, ...] = ("submit_job", "poll_job", "finalize_job", "deliver_webhook", "stream_job")
# Every internal function: the task targets, the sweep (Cloud Scheduler) and the request-object
# handler (Eventarc). Each checks its caller's OIDC token for its own URL, VEO_<ENTRY>_URL
# (edges/invoker.py), the URL its tasks, scheduler job or trigger were created with.
INTERNAL_ENTRY_POINTS: tuple[str, ...] = (*TASK_TARGETS, "sweep_jobs", "on_request_object")
# Where Google publishes the keys of the ID tokens it signs (Cloud Tasks, Scheduler, Eventarc).
GOOGLE_OIDC_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
# Where the Gemini API publishes the keys of its per-request webhook JWTs (docs/PROVIDERS.md).
GEMINI_JWKS_URL = "https://generativelanguage.googleapis.com/.well-known/jwks.json"
PUSH_MODES = ("off", "static", "request")

DEFAULT_PROVIDER = "litellm-gemini"

# The Secret Manager placeholder: a secret created but never given a value.
UNSET = "UNSET"
# Folders of the bucket the outputs must stay out of (request objects, input images, client uploads).
RESERVED_FOLDERS = frozenset({"inputs", "requests", "uploads"})
UPLOAD_CHUNK_MULTIPLE = 256 * 1024  # resumable uploads take chunks of a multiple of 256 KiB


def provider_env_prefix(provider: str) -> str:
    return "VEO_" + provider.upper().replace("-", "_") + "_"


def task_url_env(target: str) -> str:
    return f"VEO_{target.upper()}_URL"


class ConfigError(ValueError):
    """The environment does not describe a runnable deployment."""


# ------------------------------------------------------------------------------ the model catalog
# One TOML file per provider, shipped inside the deployed folder (functions/veorelay/catalog/).
CATALOG_DIR = Path(__file__).parent / "catalog"


def _read_toml(path: Path, name: str) -> Any:
    import tomllib  # only where a catalog file is read

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise CatalogError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{name}: is not valid TOML ({exc})") from None


@cache
def shipped_catalog() -> Catalog:
    """The catalog files shipped with the functions, read once per process."""
    return parse_catalog({name: (f"{name}.toml", _read_toml(CATALOG_DIR / f"{name}.toml", f"{name}.toml")) for name in PROVIDER_NAMES})


def load_catalog(override: str | None = None) -> Catalog:
    """The shipped catalog with the file `override` names (VEO_CATALOG_FILE) applied: its
    models replace (same id) or add to a provider's, and it may change a provider's default.
    A bad file is a ValueError naming the file and the key."""
    base = shipped_catalog()
    if not override:
        return base
    return merge_catalog(base, override, _read_toml(Path(override), override))


# ------------------------------------------------------------------------------ the settings
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
    """How running jobs are checked; core/poll_plan.py explains the schedule these shape."""

    initial_delay_s: float = 60.0  # the first check comes no later than this
    min_delay_s: float = 2.0  # shortest gap between two checks of a job
    max_delay_s: float = 30.0  # longest gap (also past the end of the learned spread)
    # At most this many checks are spent per second of detection delay saved. The binding limit is
    # usually the check budget (core/poll_plan.py): never more expected checks per job than the
    # reference cadence (check at once, 10 s x1.2 up to 30 s) would spend on the same learned spread.
    delay_cost_checks: float = 5.0
    max_checks: float = 10.0  # cap on a job's expected checks, for very wide spreads
    prior_median_s: float | None = None  # overrides poll_plan's prior per model
    prior_sigma: float | None = None
    stats_ttl_s: float = 300.0  # an instance re-reads learned durations this often


@dataclass(frozen=True)
class PushSettings:
    """Provider completion events in (the provider_events function, edges/provider_events.py)."""

    # The provider_events function's public URL: per-request webhook URIs and the Pub/Sub
    # push audience are made from it. Not set: no provider is asked to push.
    events_url: str | None = None
    # The Gemini API static (project-level) webhook's whsec_ signing secrets, current first.
    gemini_secrets: tuple[str, ...] = field(default=(), repr=False)
    gemini_jwks_url: str = GEMINI_JWKS_URL  # dev only: the simulator serves its own
    # The service account the Vertex Pub/Sub push subscription's OIDC token names.
    pubsub_service_account: str | None = None
    oidc_certs_url: str = GOOGLE_OIDC_CERTS_URL  # dev only: the simulator signs its pushes itself
    jwks_ttl_s: float = 3600.0  # the per-request webhook keys are kept this long (or as Cache-Control says)


@dataclass(frozen=True)
class BudgetSettings:
    """Spend and in-flight caps per client (core/budget.py); VEO_BUDGETS. No caps: no reservation."""

    default: BudgetLimits = field(default_factory=BudgetLimits)  # for clients not named
    clients: Mapping[str, BudgetLimits] = field(default_factory=dict)

    def limits_for(self, client_id: str) -> BudgetLimits:
        return self.clients.get(client_id, self.default)


@dataclass(frozen=True)
class FailoverSettings:
    """A job moved to its next provider before any provider accepted it (steps/failover.py)."""

    # model family (core/failover.py model_family) -> providers in order, for jobs that name
    # neither a provider nor fallback_providers (VEO_FAILOVER_CHAINS)
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    throttled_s: float = 120.0  # a throttled submission waits this long before the next provider takes it
    unavailable_attempts: int = 3  # submissions that found the provider unreachable, then the next provider


# Delays before each webhook attempt (the first is immediate): about three days in all.
DEFAULT_WEBHOOK_RETRY_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_SIGNED_URL_TTL_S = 7 * 24 * 3600  # the V4 signature's own limit
MAX_TASK_DELAY_S = 30 * 24 * 3600  # Cloud Tasks refuses a schedule_time further ahead


@dataclass(frozen=True)
class WebhookSettings:
    """Webhook delivery (steps/deliver.py) and the signed URLs in events (gcp/signed_urls.py)."""

    # client id -> its secrets, current first; all sign while a secret is rotated.
    secrets: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    default_secret: str | None = field(default=None, repr=False)  # for clients not in `secrets`
    retry_schedule_s: tuple[float, ...] = DEFAULT_WEBHOOK_RETRY_SCHEDULE_S
    progress_interval_s: float = 30.0  # at most one job.progress event per job in this window
    signed_url_ttl_s: int = 24 * 3600
    signing_service_account: str | None = None  # default: the function's own service account

    def secrets_for(self, client_id: str) -> tuple[str, ...]:
        return self.secrets.get(client_id) or ((self.default_secret,) if self.default_secret else ())


@dataclass(frozen=True)
class Settings:
    project: str
    location: str
    bucket: str
    output_prefix: str
    default_provider: str
    providers: Mapping[str, ProviderSettings]
    task_urls: Mapping[str, str]
    tasks_service_account: str | None = None  # the invoker: tasks carry its OIDC token; internal functions accept only it
    tasks_emulator_host: str | None = None
    allow_loopback_urls: bool = False
    job_deadline_s: int = 1800
    download_attempts: int = 3
    upload_chunk_bytes: int = 8 * 1024 * 1024
    output_sha256: bool = False  # also hash each video (sink.py: Cloud Storage's CRC32C/MD5 are always recorded)
    webhook_timeout_s: float = 15.0
    queues: QueueSettings = field(default_factory=QueueSettings)
    poll: PollSettings = field(default_factory=PollSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    push: PushSettings = field(default_factory=PushSettings)
    failover: FailoverSettings = field(default_factory=FailoverSettings)
    budgets: BudgetSettings = field(default_factory=BudgetSettings)
    storage_emulator_host: str | None = None  # local stack: signed URLs point at the emulator
    # Jobs from request objects dropped in the bucket belong to this client (request_objects.py).
    requests_client_id: str = "bucket"
    log_level: str = "INFO"
    # client id -> sha256 hex digests of its API keys (auth.py); empty = every request refused
    api_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    auth_disabled: bool = False  # VEO_AUTH_DISABLED=true: no API keys asked (local experiments only)
    sweep_stall_s: float = 600.0  # sweep.py: a job untouched this long has stopped moving
    http_timeout_s: float | None = None  # ceiling on every outbound read timeout (tests: seconds)
    # Internal entry point -> its own URL (VEO_<ENTRY>_URL): the audience its callers' tokens carry.
    internal_urls: Mapping[str, str] = field(default_factory=dict)
    # The keys OIDC tokens are checked with: Google's; the local stack's Tasks emulator serves its own.
    oidc_certs_url: str = GOOGLE_OIDC_CERTS_URL
    # Other buckets a client may name as gs:// images (VEO_INPUT_BUCKETS); veo-relay's own
    # bucket is always readable, but only under uploads/<client id>/ (core/images.py).
    input_buckets: frozenset[str] = frozenset()
    # A request body must have arrived within this (a multipart one: 3x); then 408 (edges/reading.py).
    body_timeout_s: float = 15.0
    # GET /jobs/{id}/events holds a stream this long at most, then ends it with a retry: hint
    # (EventSource reconnects): below the api function's timeout (infra/main.tf), with a margin.
    events_max_s: float = 150.0
    # Every provider's models (core/catalog.py): the shipped files, with VEO_CATALOG_FILE applied.
    catalog: Catalog = field(default_factory=shipped_catalog, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings `environ` (default: os.environ) describes; ConfigError if it describes none."""
        return _settings(read_environment(os.environ if environ is None else environ))

    def task_url(self, target: str) -> str:
        try:
            return self.task_urls[target]
        except KeyError:
            raise ConfigError(f"{task_url_env(target)} is not set") from None

    def secret_values(self) -> tuple[str, ...]:
        """Every credential this deployment holds, for redaction.py to scrub from logs and errors."""
        values = [self.webhooks.default_secret, *(s for ss in self.webhooks.secrets.values() for s in ss),
                  *self.push.gemini_secrets]
        for p in self.providers.values():
            values.append(p.api_key)
            values.extend(v for k, v in p.extras.items() if k in SECRET_EXTRAS)
        return tuple(sorted({v for v in values if v}, key=len, reverse=True))


# ------------------------------------------------------------------------------ value checks
# Each raises ValueError with what is wrong, never quoting the value; the variable's name is
# added by read_environment.
def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _folder(value: str) -> str:
    value = value.strip("/")
    if not value:
        raise ValueError("must name a folder of the bucket")
    if value.split("/")[0] in RESERVED_FOLDERS:
        raise ValueError(f"must not be one of the bucket's other folders ({', '.join(sorted(RESERVED_FOLDERS))})")
    return value


def _provider_list(raw: Any) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip() for p in str(raw).split(",") if p.strip()))
    unknown = sorted(set(names) - set(PROVIDER_NAMES))
    if unknown:
        raise ValueError(f"names unknown providers: {', '.join(unknown)} (known: {', '.join(PROVIDER_NAMES)})")
    if not names:
        raise ValueError("names no provider")
    return names


def _is_webhook_secret(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(base64.b64decode(value.removeprefix("whsec_"), validate=True)) >= 16
    except ValueError:
        return False


def _webhook_secrets(raw: Any) -> dict[str, tuple[str, ...]]:
    """VEO_WEBHOOK_SECRETS = {"client": ["whsec_new", "whsec_old"]}."""
    try:
        table = json.loads(raw)
    except ValueError:
        raise ValueError("is not valid JSON") from None
    if not isinstance(table, dict):
        raise ValueError('must be a JSON object {"client id": ["whsec_...", ...]}')
    secrets = {}
    for client, values in table.items():
        # Both checked before a client id is quoted: a swapped table would show a secret.
        if _is_webhook_secret(client):
            raise ValueError('holds a secret where a client id belongs: {"client id": ["whsec_...", ...]}')
        if not is_client_id(client):
            raise ValueError("client ids are 1-64 letters, digits, '.', '_' or '-'")
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(_is_webhook_secret(v) for v in values):
            raise ValueError(f"[{client!r}] must be a non-empty list of whsec_<base64> secrets (16 bytes or more)")
        secrets[str(client)] = tuple(values)
    return secrets


def _gemini_secrets(raw: Any) -> tuple[str, ...]:
    """VEO_GEMINI_WEBHOOK_SECRET = whsec_new[,whsec_old]: every one is tried while Google rotates."""
    values = tuple(part.strip() for part in str(raw).split(",") if part.strip())
    if not values or not all(_is_webhook_secret(v) for v in values):
        raise ValueError("must be whsec_<base64> secrets (16 bytes or more), comma-separated")
    return values


def _push_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in PUSH_MODES:
        raise ValueError(f"must be one of {', '.join(PUSH_MODES)}")
    return mode


def _pubsub_topic(value: str) -> str:
    if not re.fullmatch(r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}", value):
        raise ValueError("must be a topic name projects/<project>/topics/<topic>")
    return value


def _retry_schedule(raw: Any) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in str(raw).split(","))
    except ValueError:
        raise ValueError("must be comma-separated seconds, e.g. 0,5,300") from None
    if not all(0 <= d <= MAX_TASK_DELAY_S for d in delays):
        raise ValueError(f"delays must be between 0 and {MAX_TASK_DELAY_S} seconds")
    return delays


_BUDGET_KEYS = {"daily_usd", "monthly_usd", "max_in_flight"}


def _budget_limits(who: str, raw: Any) -> BudgetLimits:
    if not isinstance(raw, dict) or not set(raw) <= _BUDGET_KEYS:
        raise ValueError(f"{who}: must be an object with any of {', '.join(sorted(_BUDGET_KEYS))}")
    for key in ("daily_usd", "monthly_usd"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9):
            raise ValueError(f"{who}.{key}: must be a number of USD, 0 or more")
    cap = raw.get("max_in_flight")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= 1_000_000):
        raise ValueError(f"{who}.max_in_flight: must be a whole number of jobs, 0 or more")
    return BudgetLimits(raw.get("daily_usd"), raw.get("monthly_usd"), cap)


def _budgets(raw: Any) -> BudgetSettings:
    """VEO_BUDGETS = {"default": {"daily_usd": 50, "monthly_usd": 500, "max_in_flight": 20}, "<client>": {...}}."""
    try:
        given = json.loads(str(raw))
    except ValueError:
        raise ValueError('must be a JSON object, e.g. {"default": {"daily_usd": 50}, "acme": {"monthly_usd": 900}}') from None
    if not isinstance(given, dict):
        raise ValueError("must be a JSON object of client ids (and \"default\") to caps")
    limits = {who: _budget_limits(who, caps) for who, caps in given.items()}
    default = limits.pop("default", BudgetLimits())
    return BudgetSettings(default=default, clients=limits)


def _failover_chains(raw: Any) -> dict[str, tuple[str, ...]]:
    """VEO_FAILOVER_CHAINS = {"veo-3.1": ["gemini", "vertex"], ...}: a model family's providers, in order."""
    try:
        chains = json.loads(str(raw))
    except ValueError:
        raise ValueError('must be a JSON object, e.g. {"veo-3.1": ["gemini", "vertex"]}') from None
    if not isinstance(chains, dict) or not all(
            isinstance(family, str) and isinstance(chain, list) and chain and all(isinstance(p, str) for p in chain)
            for family, chain in chains.items()):
        raise ValueError("must map each model family to a non-empty list of provider names")
    return {family: tuple(dict.fromkeys(chain)) for family, chain in chains.items()}


def _bucket_list(raw: Any) -> frozenset[str]:
    """VEO_INPUT_BUCKETS = bucket,bucket: names only (no gs://, no folder)."""
    names = frozenset(part.strip() for part in str(raw).split(",") if part.strip())
    if not all(re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", name) for name in names):
        raise ValueError("must be comma-separated bucket names (lowercase letters, digits, '.', '_', '-'; no gs://)")
    return names


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


# ------------------------------------------------------------------------------ the environment
# Every variable config.py reads, by name, with its kind: its type and limits (_pydantic_type
# says them exactly; _QUICK reads the values it can vouch for). Errors name them in this order.
_FIXED_VARIABLES: dict[str, str] = {
    "GOOGLE_CLOUD_PROJECT": "str",
    "GCLOUD_PROJECT": "str",  # the legacy name, read when GOOGLE_CLOUD_PROJECT is not set
    "VEO_LOCATION": "str",
    "VEO_BUCKET": "required",
    "VEO_OUTPUT_PREFIX": "folder",
    "VEO_PROVIDERS_ENABLED": "provider_list",
    "VEO_DEFAULT_PROVIDER": "str",
    "VEO_TASKS_SERVICE_ACCOUNT": "str",
    "CLOUD_TASKS_EMULATOR_HOST": "str",
    "VEO_ALLOW_LOOPBACK_URLS": "flag",
    "VEO_JOB_DEADLINE_SECONDS": "count",
    "VEO_DOWNLOAD_ATTEMPTS": "count",
    "VEO_UPLOAD_CHUNK_BYTES": "chunk_bytes",
    "VEO_OUTPUT_SHA256": "flag",
    "VEO_WEBHOOK_TIMEOUT_SECONDS": "seconds",
    "STORAGE_EMULATOR_HOST": "url",
    "VEO_REQUESTS_CLIENT_ID": "client_id",
    "VEO_LOG_LEVEL": "log_level",
    "VEO_API_KEYS": "api_keys",
    "VEO_AUTH_DISABLED": "flag",
    "VEO_SWEEP_STALL_SECONDS": "seconds",
    "VEO_HTTP_TIMEOUT_SECONDS": "seconds",
    "VEO_OIDC_CERTS_URL": "url",
    "VEO_INPUT_BUCKETS": "bucket_list",
    "VEO_BODY_TIMEOUT_SECONDS": "seconds",
    "VEO_EVENTS_MAX_SECONDS": "seconds",
    "VEO_CATALOG_FILE": "catalog_file",

    "VEO_POLL_INITIAL_DELAY_SECONDS": "seconds_or_zero",
    "VEO_POLL_MIN_DELAY_SECONDS": "seconds",
    "VEO_POLL_MAX_DELAY_SECONDS": "seconds",
    "VEO_POLL_DELAY_COST_CHECKS": "positive",
    "VEO_POLL_MAX_CHECKS": "positive",
    "VEO_POLL_PRIOR_MEDIAN_SECONDS": "seconds",
    "VEO_POLL_PRIOR_SIGMA": "positive",
    "VEO_POLL_STATS_TTL_SECONDS": "seconds_or_zero",

    "VEO_BUDGETS": "budgets",
    "VEO_FAILOVER_CHAINS": "failover_chains",
    "VEO_FAILOVER_THROTTLED_SECONDS": "seconds",
    "VEO_FAILOVER_UNAVAILABLE_ATTEMPTS": "count",

    "VEO_PROVIDER_EVENTS_URL": "url",
    "VEO_GEMINI_WEBHOOK_SECRET": "gemini_secrets",
    "VEO_GEMINI_JWKS_URL": "url",
    "VEO_PUBSUB_PUSH_SERVICE_ACCOUNT": "str",
    "VEO_PUSH_OIDC_CERTS_URL": "url",

    "VEO_WEBHOOK_SECRETS": "webhook_secrets",
    "VEO_WEBHOOK_SECRET": "webhook_secret",
    "VEO_WEBHOOK_RETRY_SCHEDULE": "retry_schedule",
    "VEO_WEBHOOK_PROGRESS_INTERVAL_SECONDS": "seconds",
    "VEO_SIGNED_URL_TTL_SECONDS": "signed_url_ttl",
    "VEO_SIGNING_SERVICE_ACCOUNT": "str",
}


def _per_provider_variables() -> dict[str, str]:
    """VEO_<PROVIDER>_BASE_URL, _API_KEY and the provider's extras; VEO_<ENTRY>_URL of each internal function."""
    kinds = {"BASE_URL": "url", "GOOGLE_BASE_URL": "url", "WRITE_TO_BUCKET": "flag", "PUSH": "push_mode",
             "PUBSUB_TOPIC": "pubsub_topic"}
    variables: dict[str, str] = {}
    for provider in PROVIDER_NAMES:
        prefix = provider_env_prefix(provider)
        for suffix in ("BASE_URL", "API_KEY", *PROVIDER_EXTRAS.get(provider, ())):
            variables[prefix + suffix] = kinds.get(suffix, "str")
    for target in INTERNAL_ENTRY_POINTS:
        variables[task_url_env(target)] = "url"
    return variables


# Every variable config.py reads -> its kind.
ENVIRONMENT: Mapping[str, str] = {**_FIXED_VARIABLES, **_per_provider_variables()}
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(ENVIRONMENT)
# The ones holding credentials: never quoted, scrubbed from logs (Settings.secret_values).
SECRET_VARIABLES: frozenset[str] = frozenset(
    {"VEO_WEBHOOK_SECRETS", "VEO_WEBHOOK_SECRET", "VEO_API_KEYS", "VEO_GEMINI_WEBHOOK_SECRET"}
    | {provider_env_prefix(p) + "API_KEY" for p in PROVIDER_NAMES}
    | {provider_env_prefix(p) + key for p, keys in PROVIDER_EXTRAS.items() for key in keys if key in SECRET_EXTRAS}
)


def _value(environ: Mapping[str, str], name: str) -> str | None:
    """A variable's value without surrounding whitespace; None when empty or `UNSET` (not set)."""
    raw = environ.get(name)
    value = raw.strip() if isinstance(raw, str) else None
    return value if value and value != UNSET else None


def _inconsistency(env: Any) -> str | None:
    """What makes these (each valid) variables no runnable deployment, if anything."""
    if not (env.GOOGLE_CLOUD_PROJECT or env.GCLOUD_PROJECT):
        return "GOOGLE_CLOUD_PROJECT is not set"
    enabled = env.VEO_PROVIDERS_ENABLED or PROVIDER_NAMES
    if (env.VEO_DEFAULT_PROVIDER or DEFAULT_PROVIDER) not in enabled:
        return f"VEO_DEFAULT_PROVIDER is not an enabled provider (VEO_PROVIDERS_ENABLED: {', '.join(enabled)})"
    poll = PollSettings()
    if (env.VEO_POLL_MIN_DELAY_SECONDS or poll.min_delay_s) > (env.VEO_POLL_MAX_DELAY_SECONDS or poll.max_delay_s):
        return "VEO_POLL_MIN_DELAY_SECONDS must not exceed VEO_POLL_MAX_DELAY_SECONDS"
    for family, chain in (env.VEO_FAILOVER_CHAINS or {}).items():
        if unknown := [p for p in chain if p not in enabled]:
            return f"VEO_FAILOVER_CHAINS: {family} names providers that are not enabled: {', '.join(unknown)}"
    if env.VEO_BUCKET in (env.VEO_INPUT_BUCKETS or ()):
        return "VEO_INPUT_BUCKETS must not name VEO_BUCKET: clients read it only under uploads/<client id>/, always"
    return None


def read_environment(environ: Mapping[str, str]) -> Any:
    """The variables of `environ` (attributes named as the variables; None: not set),
    validated; ConfigError names each bad one.

    Cold starts: a deployment's environment is valid, and the quick reading below takes it
    without pydantic (whose import and schemas would cost every instance more than all the
    rest of this module). Anything it cannot vouch for, pydantic reads: every refusal, and its
    message, is pydantic's (_validated), the same as if it had read every value."""
    try:
        return _quick_read(environ)
    except _Unsure:
        return _validated(environ)


# ------------------------------------------------------------------------------ the quick reading
class _Unsure(Exception):
    """A value the quick reading does not vouch for: pydantic reads the environment instead."""


# Only what pydantic reads the same way, to the same value: plain ASCII numbers (pydantic also
# takes "+5", "1_000", "1e3", ...: those go to it), and its lowercase boolean words.
_WHOLE = re.compile(r"[1-9][0-9]{0,17}|0")
_DECIMAL = re.compile(r"(?:[1-9][0-9]{0,17}|0)(?:\.[0-9]{1,17})?")
_BOOLEANS = {"1": True, "on": True, "t": True, "true": True, "y": True, "yes": True,
             "0": False, "off": False, "f": False, "false": False, "n": False, "no": False}


def _whole(low: int, high: int | None = None, test: Callable[[int], bool] | None = None) -> Callable[[str], int]:
    def read(raw: str) -> int:
        if not _WHOLE.fullmatch(raw):
            raise _Unsure
        value = int(raw)
        if value < low or (high is not None and value > high) or (test is not None and not test(value)):
            raise _Unsure
        return value
    return read


def _decimal(above: float | None = None, at_least: float | None = None) -> Callable[[str], float]:
    def read(raw: str) -> float:
        if not _DECIMAL.fullmatch(raw):
            raise _Unsure
        value = float(raw)
        if (above is not None and not value > above) or (at_least is not None and not value >= at_least):
            raise _Unsure
        return value
    return read


def _passing(test: Callable[[str], bool]) -> Callable[[str], str]:
    def read(raw: str) -> str:
        if not test(raw):
            raise _Unsure
        return raw
    return read


def _through(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A check or conversion of config.py's own: what it refuses (ValueError), pydantic reports."""
    def read(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError:
            raise _Unsure from None
    return read


def _flag(raw: str) -> bool:
    try:
        return _BOOLEANS[raw]
    except KeyError:
        raise _Unsure from None


# kind -> its quick reading; each gives what pydantic's type (_pydantic_type) gives, or _Unsure.
_QUICK: Mapping[str, Callable[[str], Any]] = {
    "str": str, "required": str, "flag": _flag,
    "count": _whole(1), "chunk_bytes": _whole(1, test=lambda n: n % UPLOAD_CHUNK_MULTIPLE == 0),
    "signed_url_ttl": _whole(1, MAX_SIGNED_URL_TTL_S),
    "positive": _decimal(above=0), "seconds": _decimal(above=0), "seconds_or_zero": _decimal(at_least=0),
    "url": _passing(_http_url), "client_id": _passing(is_client_id), "webhook_secret": _passing(_is_webhook_secret),
    "folder": _through(_folder), "log_level": _through(_log_level), "push_mode": _through(_push_mode),
    "pubsub_topic": _through(_pubsub_topic), "provider_list": _through(_provider_list),
    "api_keys": _through(parse_api_keys), "bucket_list": _through(_bucket_list),
    "catalog_file": _through(load_catalog), "budgets": _through(_budgets),
    "failover_chains": _through(_failover_chains), "gemini_secrets": _through(_gemini_secrets),
    "webhook_secrets": _through(_webhook_secrets), "retry_schedule": _through(_retry_schedule),
}


def _quick_read(environ: Mapping[str, str]) -> SimpleNamespace:
    values: dict[str, Any] = {}
    for name, kind in ENVIRONMENT.items():
        value = _value(environ, name)
        if value is None and kind == "required":
            raise _Unsure
        values[name] = None if value is None else _QUICK[kind](value)
    env = SimpleNamespace(**values)
    if _inconsistency(env) is not None:
        raise _Unsure
    return env


# ------------------------------------------------------------------------------ pydantic's reading
# Each check raises ValueError with what is wrong, never quoting the value; the variable's name
# is added by _validated.
def _checked(test: Callable[[Any], bool], problem: str) -> AfterValidator:
    from pydantic import AfterValidator

    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _pydantic_type(kind: str) -> Any:
    """The type and limits of a kind of variable, as pydantic checks them."""
    from pydantic import AfterValidator, BeforeValidator, Field, InstanceOf

    positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
    return {
        "str": str, "required": str,
        "flag": bool,  # 1/0, true/false, yes/no, on/off; anything else is refused
        "count": Annotated[int, Field(gt=0)],
        "chunk_bytes": Annotated[int, Field(gt=0), _checked(lambda n: n % UPLOAD_CHUNK_MULTIPLE == 0,
                                                            f"must be a multiple of 256 KiB ({UPLOAD_CHUNK_MULTIPLE} bytes)")],
        "signed_url_ttl": Annotated[int, Field(ge=1, le=MAX_SIGNED_URL_TTL_S)],
        "positive": positive, "seconds": positive,
        "seconds_or_zero": Annotated[float, Field(ge=0, allow_inf_nan=False)],
        "url": Annotated[str, _checked(_http_url, "must be an http(s) URL")],
        "client_id": Annotated[str, _checked(is_client_id, "must be a client id: 1-64 letters, digits, '.', '_' or '-'")],
        "webhook_secret": Annotated[str, _checked(_is_webhook_secret, "must be a whsec_<base64> secret (16 bytes or more)")],
        "folder": Annotated[str, AfterValidator(_folder)],
        "log_level": Annotated[str, AfterValidator(_log_level)],
        "push_mode": Annotated[str, AfterValidator(_push_mode)],
        "pubsub_topic": Annotated[str, AfterValidator(_pubsub_topic)],
        "provider_list": Annotated[tuple[str, ...], BeforeValidator(_provider_list)],
        "api_keys": Annotated[dict[str, tuple[str, ...]], BeforeValidator(parse_api_keys)],
        "bucket_list": Annotated[frozenset[str], BeforeValidator(_bucket_list)],
        "catalog_file": Annotated[InstanceOf[Catalog], BeforeValidator(lambda path: load_catalog(str(path)))],
        "budgets": Annotated[InstanceOf[BudgetSettings], BeforeValidator(_budgets)],
        "failover_chains": Annotated[dict[str, tuple[str, ...]], BeforeValidator(_failover_chains)],
        "gemini_secrets": Annotated[tuple[str, ...], BeforeValidator(_gemini_secrets)],
        "webhook_secrets": Annotated[dict[str, tuple[str, ...]], BeforeValidator(_webhook_secrets)],
        "retry_schedule": Annotated[tuple[float, ...], BeforeValidator(_retry_schedule)],
    }[kind]


@cache
def _environment_model() -> type[BaseSettings]:
    """`Environment` (pydantic-settings): every variable, its type and limits. Built the first
    time a value needs it (a refusal, or a value the quick reading leaves to it)."""
    from pydantic import create_model, model_validator
    from pydantic.fields import FieldInfo
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

    class EnvironmentSource(PydanticBaseSettingsSource):
        """The one reader of the environment: each variable the settings class declares, looked up
        by its name (the field's name). Empty values and `UNSET` are left out: not set."""

        def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
            super().__init__(settings_cls)
            self._environ = environ

        def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
            return _value(self._environ, field_name), field_name, False

        def __call__(self) -> dict[str, Any]:
            found = {}
            for name, info in self.settings_cls.model_fields.items():
                value, key, _ = self.get_field_value(info, name)
                if value is not None:
                    found[key] = value
            return found

    class Variables(BaseSettings):
        model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="forbid", validate_default=False)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (EnvironmentSource(settings_cls, os.environ),)  # Environment() reads os.environ, the same way

        @classmethod
        def source(cls, environ: Mapping[str, str]) -> PydanticBaseSettingsSource:
            return EnvironmentSource(cls, environ)

        @model_validator(mode="after")
        def _consistent(self) -> Any:
            problem = _inconsistency(self)
            if problem is not None:
                raise ValueError(problem)
            return self

    fields: dict[str, Any] = {name: (str, ...) if kind == "required" else (_pydantic_type(kind) | None, None)
                              for name, kind in ENVIRONMENT.items()}
    model: type[BaseSettings] = create_model("Environment", __base__=Variables, __module__=__name__, **fields)
    return model


def _validated(environ: Mapping[str, str]) -> Any:
    """The variables of `environ` as pydantic reads them; ConfigError names each bad one."""
    from pydantic import ValidationError

    environment: Any = _environment_model()
    try:
        # Exactly this source (not the ones settings_customise_sources names). mypy, without
        # pydantic's plugin, knows BaseSettings.__init__ only by its fields.
        return environment(_build_sources=((environment.source(environ),), {}))
    except ValidationError as exc:
        problems = (_problem(e) for e in exc.errors(include_url=False, include_context=False, include_input=False))
        raise ConfigError("; ".join(problems)) from None


def _problem(error: Any) -> str:
    """One line per bad variable, named; pydantic's messages never include the input."""
    name = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "missing":
        return f"{name} is not set"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message if not name or message.startswith(name) else f"{name}: {message}"


def _given(**values: Any) -> dict[str, Any]:
    """The values that were set; the others keep the setting's default."""
    return {k: v for k, v in values.items() if v is not None}


def _settings(env: Any) -> Settings:
    location = env.VEO_LOCATION or "us-central1"
    enabled = env.VEO_PROVIDERS_ENABLED or PROVIDER_NAMES
    return Settings(
        project=env.GOOGLE_CLOUD_PROJECT or env.GCLOUD_PROJECT or "",
        location=location,
        bucket=env.VEO_BUCKET,
        output_prefix=env.VEO_OUTPUT_PREFIX or "videos",
        default_provider=env.VEO_DEFAULT_PROVIDER or DEFAULT_PROVIDER,
        providers={name: _provider_settings(env, name, location) for name in enabled},
        task_urls={t: url for t in TASK_TARGETS if (url := getattr(env, task_url_env(t)))},
        internal_urls={e: url for e in INTERNAL_ENTRY_POINTS if (url := getattr(env, task_url_env(e)))},
        poll=PollSettings(**_given(
            initial_delay_s=env.VEO_POLL_INITIAL_DELAY_SECONDS,
            min_delay_s=env.VEO_POLL_MIN_DELAY_SECONDS,
            max_delay_s=env.VEO_POLL_MAX_DELAY_SECONDS,
            delay_cost_checks=env.VEO_POLL_DELAY_COST_CHECKS,
            max_checks=env.VEO_POLL_MAX_CHECKS,
            prior_median_s=env.VEO_POLL_PRIOR_MEDIAN_SECONDS,
            prior_sigma=env.VEO_POLL_PRIOR_SIGMA,
            stats_ttl_s=env.VEO_POLL_STATS_TTL_SECONDS,
        )),
        webhooks=WebhookSettings(**_given(
            secrets=env.VEO_WEBHOOK_SECRETS,
            default_secret=env.VEO_WEBHOOK_SECRET,
            retry_schedule_s=env.VEO_WEBHOOK_RETRY_SCHEDULE,
            progress_interval_s=env.VEO_WEBHOOK_PROGRESS_INTERVAL_SECONDS,
            signed_url_ttl_s=env.VEO_SIGNED_URL_TTL_SECONDS,
            signing_service_account=env.VEO_SIGNING_SERVICE_ACCOUNT,
        )),
        failover=FailoverSettings(**_given(
            chains=env.VEO_FAILOVER_CHAINS,
            throttled_s=env.VEO_FAILOVER_THROTTLED_SECONDS,
            unavailable_attempts=env.VEO_FAILOVER_UNAVAILABLE_ATTEMPTS,
        )),
        push=PushSettings(**_given(
            events_url=env.VEO_PROVIDER_EVENTS_URL,
            gemini_secrets=env.VEO_GEMINI_WEBHOOK_SECRET,
            gemini_jwks_url=env.VEO_GEMINI_JWKS_URL,
            pubsub_service_account=env.VEO_PUBSUB_PUSH_SERVICE_ACCOUNT,
            oidc_certs_url=env.VEO_PUSH_OIDC_CERTS_URL,
        )),
        **_given(
            tasks_service_account=env.VEO_TASKS_SERVICE_ACCOUNT,
            tasks_emulator_host=env.CLOUD_TASKS_EMULATOR_HOST,
            allow_loopback_urls=env.VEO_ALLOW_LOOPBACK_URLS,
            job_deadline_s=env.VEO_JOB_DEADLINE_SECONDS,
            download_attempts=env.VEO_DOWNLOAD_ATTEMPTS,
            upload_chunk_bytes=env.VEO_UPLOAD_CHUNK_BYTES,
            output_sha256=env.VEO_OUTPUT_SHA256,
            webhook_timeout_s=env.VEO_WEBHOOK_TIMEOUT_SECONDS,
            storage_emulator_host=env.STORAGE_EMULATOR_HOST,
            requests_client_id=env.VEO_REQUESTS_CLIENT_ID,
            log_level=env.VEO_LOG_LEVEL,
            api_keys=env.VEO_API_KEYS,
            auth_disabled=env.VEO_AUTH_DISABLED,
            sweep_stall_s=env.VEO_SWEEP_STALL_SECONDS,
            http_timeout_s=env.VEO_HTTP_TIMEOUT_SECONDS,
            oidc_certs_url=env.VEO_OIDC_CERTS_URL,
            input_buckets=env.VEO_INPUT_BUCKETS,
            body_timeout_s=env.VEO_BODY_TIMEOUT_SECONDS,
            events_max_s=env.VEO_EVENTS_MAX_SECONDS,
            catalog=env.VEO_CATALOG_FILE,
            budgets=env.VEO_BUDGETS,
        ),
    )


def _provider_settings(env: Any, name: str, location: str) -> ProviderSettings:
    prefix = provider_env_prefix(name)
    extras: dict[str, str] = {}
    for key in PROVIDER_EXTRAS.get(name, ()):
        value = getattr(env, prefix + key)
        if value is not None:
            extras[key] = str(value).lower() if isinstance(value, bool) else value
    base_url = getattr(env, prefix + "BASE_URL") or DEFAULT_BASE_URLS[name].format(location=extras.get("LOCATION") or location)
    return ProviderSettings(name=name, base_url=base_url.rstrip("/"), api_key=getattr(env, prefix + "API_KEY"), extras=extras)
