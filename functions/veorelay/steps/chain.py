"""A job's task chain: the only place that builds a task (name, queue, target, payload, delay,
dispatch deadline) and the only place that decodes a task's payload back.

Task names make enqueueing idempotent: a step that runs twice enqueues the same name twice and
Cloud Tasks keeps one. Cloud Tasks refuses a name used in the last hour, so a chain the sweep
restarts (`gen` > 0, from the job's `sweep_gen`) carries its generation in every name:

    <job>-submit            <job>-submit-<n>          <job>-g<gen>-submit
    <job>[-g<gen>]-h<hop>-submit[-<n>]   (the submission on the job's hop-th fallback provider: steps/failover.py)
    <job>-stream            <job>-stream-g<gen>
    <job>-poll-<n>          <job>-g<gen>-poll-<n>         <job>[-g<gen>]-c<chain>-poll-<n>
    <job>-finalize          <job>-g<gen>-finalize
    <job>-discard           <job>-discard-final       (finalize_job on a job that ended otherwise)
    <job>-wh-<event>[-<seq>][-r<chain>]-<attempt>
    <job>[-g<gen>]-push-<window>   (a check a provider completion event asked for: steps/events_in.py)

A completion event's check is named by the job and the PUSH_WINDOW_S window the event came in:
every duplicate of an event (a provider's redelivery, the static and the per-request webhook of
one job, a replay) within it collapses into one task, so events cost at most one provider call
per job per window, whatever their number. It is no check of the job's chain (it never queues a
next one): the chain goes on as the backstop beside it.

A payload carries only what the job record cannot say (which check of the chain this is, when
the previous check was made); every step reads the job and trusts it over the payload.

The job names its current poll chain with two fields, and a poll task carrying others is a
no-op: `sweep_gen` (the sweep restarted the chain) and `poll_chain`, the id of a chain that took
the job over within a generation. A job's first chain has none (""): the submit step's move to
`running` happens once, so nothing else can start a chain beside it. A streaming job's polling
starts when its stream is given up, from a stream task that may have been delivered twice (the
first holder still alive, or resumed long after): that step takes the job over with a checked
write, a fresh `poll_chain` set only if the job still names the chain it read (steps/stream.py
follow_by_polling), and its tasks carry the id in their names, so two takeovers never collide
with each other or with the sweep's. No poll writes anything to stay the current one.
"""
from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from veorelay.config import Settings
from veorelay.core.events import EVENT_TYPES
from veorelay.core.job import Job
from veorelay.gcp.tasks import TaskRequest

# Cloud Tasks' longest dispatch deadline: a long download or a held stream must not be
# redelivered while it still runs (the functions' timeouts are the same, infra/main.tf).
FINALIZE_DEADLINE_S = 1800
STREAM_DEADLINE_S = 1800
PUSH_WINDOW_S = 30  # completion events for one job within one window: one check

_REDELIVERY_CHAIN = re.compile(r"^r[0-9]{1,12}$")
_CHAIN_ID = re.compile(r"^[0-9a-f]{8}$")
NOT_A_CHAIN = "invalid"  # what a malformed `chain` in a poll payload decodes to: no job's chain


def sweep_generation(job: Job | Mapping[str, Any]) -> int:
    """How many times the sweep restarted this job's chain (0: never)."""
    return int(job.get("sweep_gen") or 0)


def current_chain(job: Job | Mapping[str, Any]) -> str:
    """The id of the poll chain that took the job over in its generation ("": its first chain)."""
    return str(job.get("poll_chain") or "")


def chain_fields(job: Job | Mapping[str, Any]) -> dict[str, Any]:
    """The fields that name the job's current chain, as read: the precondition of a takeover
    (gcp/store.py update(unchanged=...))."""
    return {"sweep_gen": job.get("sweep_gen"), "poll_chain": job.get("poll_chain")}


def new_chain_id() -> str:
    return secrets.token_hex(4)


# ---------------------------------------------------------------------------- building tasks


def submit_task(settings: Settings, job: Job, retry: int = 0, delay_s: float = 0.0) -> TaskRequest:
    """The submission, on the provider's own queue (rate-limited to its quota). `retry` > 0: the
    n-th wait after the provider throttled us."""
    job_id, gen, hop = job["id"], sweep_generation(job), int(job.get("provider_hop") or 0)
    if hop:  # each provider of a failover chain has its own names: its queue may still hold the last one's
        name = f"{job_id}{f'-g{gen}' if gen else ''}-h{hop}-submit{f'-{retry}' if retry else ''}"
    elif retry:
        name = f"{job_id}-submit-{retry}"
    elif gen:
        name = f"{job_id}-g{gen}-submit"
    else:
        name = f"{job_id}-submit"
    return TaskRequest(queue=settings.queues.submit(job["provider"]), target="submit_job", name=name,
                       payload={"job_id": job_id}, delay_s=delay_s)


def stream_task(settings: Settings, job: Job) -> TaskRequest:
    gen = sweep_generation(job)
    return TaskRequest(queue=settings.queues.stream, target="stream_job",
                       name=f"{job['id']}-stream" + (f"-g{gen}" if gen else ""),
                       payload={"job_id": job["id"]}, dispatch_deadline_s=STREAM_DEADLINE_S)


def poll_task(settings: Settings, job: Job, poll_number: int, delay_s: float = 0.0,
              checked_s: float | None = None) -> TaskRequest:
    """Check number `poll_number` of the job's current chain. `checked_s`: seconds since the
    provider accepted the job at the previous check (what the learned schedule measures)."""
    job_id, gen, chain_id = job["id"], sweep_generation(job), current_chain(job)
    payload: dict[str, Any] = {"job_id": job_id, "poll": poll_number}
    if gen:
        payload["gen"] = gen
    if chain_id:
        payload["chain"] = chain_id
    if checked_s is not None:
        payload["checked_s"] = round(checked_s, 3)
    name = "-".join([job_id, *([f"g{gen}"] if gen else []), *([f"c{chain_id}"] if chain_id else []), "poll", str(poll_number)])
    return TaskRequest(queue=settings.queues.poll, target="poll_job", name=name, payload=payload, delay_s=delay_s)


def push_check_task(settings: Settings, job: Job, received_at: float, received_s: float) -> TaskRequest:
    """The immediate check a provider's completion event asks for (received at unix time
    `received_at`, `received_s` seconds after the provider accepted the job)."""
    job_id, gen = job["id"], sweep_generation(job)
    window = int(received_at // PUSH_WINDOW_S)
    name = "-".join([job_id, *([f"g{gen}"] if gen else []), "push", str(window)])
    payload: dict[str, Any] = {"job_id": job_id, "push": window, "event_s": round(received_s, 3)}
    if gen:
        payload["gen"] = gen
    return TaskRequest(queue=settings.queues.poll, target="poll_job", name=name, payload=payload)


def finalize_task(settings: Settings, job: Job) -> TaskRequest:
    job_id, gen = job["id"], sweep_generation(job)
    name = f"{job_id}-finalize" if not gen else f"{job_id}-g{gen}-finalize"
    return TaskRequest(queue=settings.queues.finalize, target="finalize_job", name=name,
                       payload={"job_id": job_id}, dispatch_deadline_s=FINALIZE_DEADLINE_S)


def discard_task(settings: Settings, job: Job, final: bool = False) -> TaskRequest:
    """Removes the videos of a job that ended failed or cancelled while downloading: finalize_job,
    which on such a job deletes every output name it could have stored and does nothing else.
    `<job>-discard` when the job ends; `<job>-discard-final` from the sweep once no finalize
    attempt can still be running (the job's discard_due_at)."""
    name = f"{job['id']}-discard" + ("-final" if final else "")
    return TaskRequest(queue=settings.queues.finalize, target="finalize_job", name=name, payload={"job_id": job["id"]})


def webhook_task(settings: Settings, job_id: str, event_type: str, attempt: int, delay_s: float = 0.0,
                 seq: int | None = None, chain: str = "") -> TaskRequest:
    """One attempt of one event. `seq` numbers job.progress events; `chain` marks a redelivery
    (`r<unix seconds>`), so a redelivery never collides with the original schedule's names."""
    parts = [job_id, "wh", event_type.replace(".", "_")]
    parts += [str(seq)] if seq is not None else []
    parts += [chain] if chain else []
    payload: dict[str, Any] = {"job_id": job_id, "event": event_type, "attempt": attempt}
    if seq is not None:
        payload["seq"] = seq
    if chain:
        payload["chain"] = chain
    return TaskRequest(
        queue=settings.queues.webhooks, target="deliver_webhook", name="-".join([*parts, str(attempt)]),
        payload=payload, delay_s=delay_s,
        # An attempt takes at most the POST's timeout, plus signing and recording.
        dispatch_deadline_s=max(30, int(settings.webhook_timeout_s) + 30),
    )


def restart_task(settings: Settings, job: Job) -> TaskRequest:
    """The first task of the fresh chain the sweep starts for a job whose chain was lost."""
    status = job["status"]
    if status == "accepted":
        return submit_task(settings, job)
    if status == "running":
        return poll_task(settings, job, 1)
    return finalize_task(settings, job)


# ---------------------------------------------------------------------------- decoding payloads


@dataclass(frozen=True)
class PollCall:
    poll_number: int
    checked_s: float | None
    gen: int
    chain: str = ""  # the poll chain that queued it ("": the job's first; chain.current_chain)
    push: bool = False  # a completion event's check (push_check_task): no chain, no next check


@dataclass(frozen=True)
class WebhookCall:
    event_type: str
    attempt: int
    seq: int | None
    chain: str


def decode_poll(payload: Mapping[str, Any]) -> PollCall:
    """What a poll task says; a field that is missing or malformed takes its safe default."""
    poll = payload.get("poll")
    gen = payload.get("gen", 0)
    checked = payload.get("checked_s")
    chain_id = payload.get("chain", "")
    push = payload.get("push")
    if _is_int(push) and push >= 0:
        event_s = payload.get("event_s")
        received = float(event_s) if _is_number(event_s) and math.isfinite(event_s) and event_s >= 0 else None
        return PollCall(poll_number=0, checked_s=received, gen=gen if _is_int(gen) and gen >= 0 else 0, push=True)
    return PollCall(
        poll_number=poll if _is_int(poll) and poll > 0 else 1,
        checked_s=float(checked) if _is_number(checked) and math.isfinite(checked) and checked >= 0 else None,
        gen=gen if _is_int(gen) and gen >= 0 else 0,
        chain=chain_id if chain_id == "" or (isinstance(chain_id, str) and _CHAIN_ID.match(chain_id)) else NOT_A_CHAIN,
    )


def decode_webhook(payload: Mapping[str, Any]) -> WebhookCall | None:
    """None for a payload no code of ours wrote (dropped: retrying cannot fix it)."""
    event_type, attempt = payload.get("event"), payload.get("attempt", 1)
    seq, chain = payload.get("seq"), payload.get("chain") or ""
    if (event_type not in EVENT_TYPES or not _is_int(attempt) or attempt < 1
            or not (seq is None or _is_int(seq)) or not (chain == "" or (isinstance(chain, str) and _REDELIVERY_CHAIN.match(chain)))):
        return None
    return WebhookCall(str(event_type), attempt, seq, chain)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
