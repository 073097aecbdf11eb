"""The one small interface every provider dialect implements."""
from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from veorelay.config import shipped_catalog
from veorelay.core.capabilities import Capabilities
from veorelay.core.catalog import Catalog, ProviderCatalog
from veorelay.core.download import Download
from veorelay.core.errors import ErrorCode, JobError, PermanentError

Handle = dict[str, Any]  # JSON-serialisable: stored on the job as is


@dataclass(frozen=True)
class OutputRef:
    """Where one finished video can be fetched. Never holds a credential: the provider adds
    its own auth when it opens the output."""

    index: int
    url: str | None = None
    gcs_uri: str | None = None  # already in a bucket (Vertex with storageUri): verify, don't copy
    extra: dict[str, Any] = field(default_factory=dict)

    def object_in(self, bucket: str) -> str | None:
        """The name of the object gcs_uri names, if it is in `bucket` (None: elsewhere, or none)."""
        if not self.gcs_uri or not self.gcs_uri.startswith("gs://"):
            return None
        in_bucket, _, name = self.gcs_uri.removeprefix("gs://").partition("/")
        return name if in_bucket == bucket and name else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputRef:
        return cls(index=int(data["index"]), url=data.get("url"), gcs_uri=data.get("gcs_uri"), extra=dict(data.get("extra") or {}))


@dataclass(frozen=True)
class Progress:
    state: Literal["running", "succeeded", "failed"]
    percent: int | None = None
    stage: str | None = None
    outputs: tuple[OutputRef, ...] = ()
    error: JobError | None = None


class StreamBroken(Exception):
    """A provider's event stream was cut before its last event (reset, read timeout)."""


class InputImages(Protocol):
    """Reads an input image veo-relay stored at acceptance (steps/images.py)."""

    def read(self, gcs_uri: str) -> bytes: ...


def inline_image(inputs: InputImages | None, image: AcceptedImage) -> tuple[str, str]:
    """(base64 text, mime type) of a stored image, for dialects that take images inline."""
    if inputs is None or image.gcs_uri is None or image.mime_type is None:
        raise PermanentError(ErrorCode.INTERNAL, "the job's image was not stored at acceptance")
    return base64.b64encode(inputs.read(image.gcs_uri)).decode("ascii"), image.mime_type


@dataclass(frozen=True)
class ProviderEnv:
    """What some dialects need beyond their own settings."""

    inputs: InputImages | None = None
    bucket: str | None = None  # veo-relay's bucket (Vertex writes outputs there with storageUri)
    project: str | None = None  # the deployment's project and region (Vertex's defaults)
    location: str | None = None
    events_url: str | None = None  # the provider_events function's URL (completion events in)
    catalog: Catalog | None = None  # the models (Settings.catalog); None: the shipped files

    def provider_catalog(self, name: str) -> ProviderCatalog:
        """The catalog entry of provider `name`: this deployment's, else the shipped one."""
        if self.catalog is not None:
            return self.catalog.provider(name)
        return shipped_catalog().provider(name)


if TYPE_CHECKING:
    from veorelay.config import ProviderSettings
    from veorelay.core.accepted import AcceptedImage, AcceptedRequest


class KeyedDialect:
    """The start every single-endpoint dialect shares: its base URL, one credential header, the
    HTTP session, and the reader for the job's stored input images."""

    capabilities: Capabilities

    def __init__(self, settings: ProviderSettings, session: Any, env: ProviderEnv = ProviderEnv()):
        self.capabilities = self.capabilities_for(env.provider_catalog(self.name))
        self._base = settings.base_url
        self._headers = self.auth_headers(settings.api_key or "")
        self._session = session
        self._inputs = env.inputs

    name: str

    @classmethod
    def capabilities_for(cls, catalog: ProviderCatalog) -> Capabilities:
        """What this dialect can send, with the catalog's models."""
        raise NotImplementedError

    @staticmethod
    def auth_headers(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


class Provider(Protocol):
    name: str
    capabilities: Capabilities

    def submit(self, job_id: str, req: AcceptedRequest) -> Handle: ...

    def check(self, handle: Handle) -> Progress: ...

    def open_output(self, ref: OutputRef) -> Download: ...


@dataclass(frozen=True)
class Generation:
    """One generation a searching provider's records hold that may be the one a handle stands
    for (StreamingProvider.candidates): the ids of its entries there, which a job claims."""

    ids: tuple[str, ...]
    created_at: float  # epoch seconds
    # How many generations these entries may be: entries of several created in the same second
    # cannot be told apart (more entries, or videos, than one generation has). Above 1: ambiguous.
    alike: int = 1


class StreamEvent(Protocol):
    """One event of a provider's stream: a new status, the completion, or an error."""

    @property
    def kind(self) -> str: ...  # "status" | "complete" | "error"

    @property
    def stage(self) -> str | None: ...

    @property
    def percent(self) -> int | None: ...

    @property
    def outputs(self) -> tuple[OutputRef, ...]: ...

    @property
    def error(self) -> JobError | None: ...

    @property
    def generation_ids(self) -> tuple[str, ...]: ...  # the completion's: the provider's ids of its videos' records


class ProviderStream(Protocol):
    """The open answer to a streaming submit (what open_stream returns)."""

    def events(self) -> Iterator[StreamEvent]: ...

    def close(self) -> None: ...


class StreamingProvider(Provider, Protocol):
    """A dialect whose answer to the submit is an event stream (genaipro): stream_job
    (steps/stream.py) holds it; `check` finds the job again without it."""

    def open_stream(self, req: AcceptedRequest, read_timeout_s: float) -> ProviderStream:
        """POST the job (the paid call); the result has events() and close()."""
        ...

    def stream_handle(self, req: AcceptedRequest, submitted_at: float) -> Handle:
        """The handle of `req` POSTed at `submitted_at` (epoch seconds): what `candidates`
        needs to find the job again without its stream. Opaque to the steps."""
        ...

    def candidates(self, handle: Handle) -> list[Generation]:
        """Every generation of the provider's records that may be the one `handle` stands for
        (the same request, created about when it was sent), newest first. Empty: none (so the
        POST never reached it). Which one is the job's is for the steps to decide
        (steps/recover.py): never a guess."""
        ...

    def pin(self, handle: Handle, generation: Generation) -> Handle:
        """The handle of that generation exactly: `check` follows it and nothing else."""
        ...

    def is_pinned(self, handle: Handle) -> bool:
        """Whether `handle` names one generation (pin); `check` of any other handle finds nothing."""
        ...


@runtime_checkable
class BucketWriter(Protocol):
    """A dialect that can write a job's videos into veo-relay's bucket itself (Vertex with
    storageUri); its outputs then name objects there (OutputRef.gcs_uri), which finalize
    verifies and moves instead of downloading."""

    def job_folder(self, job_id: str) -> str:
        """The folder of the bucket it writes this job's videos into, ending with "/"; an output
        it names anywhere else is not this job's."""
        ...
