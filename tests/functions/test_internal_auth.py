"""Every internal function checks its caller's OIDC token in code: the invoker's, signed by a key
of the certs URL, for the function's own URL. Each entry point gets a job (or a request object)
its step would change at once, then calls that must change nothing: none (401), not a JWT (401),
and tokens that are not the one (403: another signer, unsigned, another audience, expired,
issued in the future, another issuer, another account, an unverified email); then the real
one, with which the step runs. Tokens are minted with the stack's key (LocalStack.oidc_token),
as its Tasks emulator signs them."""
from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

pytestmark = [pytest.mark.integration, pytest.mark.badinput]

JOB_FIELDS = {"client_id": "demo", "provider": "litellm-gemini", "model": "veo-3.1-fast-generate-preview",
              "request": {"prompt": "an internal call"}, "metadata": None, "outputs": [], "error": None}


def own_url(stack, target: str) -> str:
    return stack.env[f"VEO_{target.upper()}_URL"]


def forged_key_token(stack, audience: str) -> str:
    """Right claims, right key id, another key: what someone without the signing key can make."""
    key = json.loads(stack.oidc_key_file.read_text())
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    iat = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": audience, "email": stack.env["VEO_TASKS_SERVICE_ACCOUNT"],
              "email_verified": True, "iat": iat, "exp": iat + 3600}
    return google_jwt.encode(crypt.RSASigner.from_string(pem, key_id=key["kid"]), claims).decode()


def unsigned_token(stack, audience: str) -> str:
    """What the Tasks emulator used to send (alg none): readable claims, no proof."""
    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    iat = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": audience, "email": stack.env["VEO_TASKS_SERVICE_ACCOUNT"],
              "email_verified": True, "iat": iat, "exp": iat + 3600}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def refused_calls(stack, target: str) -> list[tuple[str, dict[str, str], int]]:
    """(what, headers, status) of calls the function must refuse."""
    url = own_url(stack, target)
    other = own_url(stack, "poll_job" if target != "poll_job" else "submit_job")
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    return [
        ("no token", {}, 401),
        ("only the headers Cloud Tasks and Scheduler set", {"X-CloudTasks-QueueName": "veo-poll", "X-CloudScheduler": "true"}, 401),
        ("another scheme", {"Authorization": "Basic dmVvOnJlbGF5"}, 401),
        ("not a JWT", bearer("not-a-token"), 401),
        ("another signer", bearer(forged_key_token(stack, url)), 403),
        ("unsigned", bearer(unsigned_token(stack, url)), 403),
        ("another function's audience", bearer(stack.oidc_token(other)), 403),
        ("expired", bearer(stack.oidc_token(url, issued_at=time.time() - 7200)), 403),
        ("issued in the future", bearer(stack.oidc_token(url, issued_at=time.time() + 3600)), 403),
        ("another issuer", bearer(stack.oidc_token(url, iss="https://issuer.example")), 403),
        ("another service account", bearer(stack.oidc_token(url, email="intruder@veo-relay-local.iam.gserviceaccount.com")), 403),
        ("an unverified email", bearer(stack.oidc_token(url, email_verified=False)), 403),
    ]


# ------------------------------------------------------------------------------ what each function is given


@pytest.fixture(scope="module")
def rt(function_env):
    from veorelay.runtime import runtime

    return runtime()


def seeded_job(rt, status: str, *, overdue: bool = False, **fields: Any) -> str:
    """A job written straight into the store: no task exists for it, so only the calls below touch it."""
    from veorelay.core.clock import utcnow

    now = utcnow()
    job_id = uuid.uuid4().hex
    rt.store.create({"id": job_id, "status": status, **JOB_FIELDS, "webhook": {"url": None, "events": None},
                     "progress": {"percent": 0, "stage": status}, "created_at": now, "updated_at": now,
                     "deadline_at": now + timedelta(seconds=-60 if overdue else 1800),
                     "timestamps": {"accepted": now, **({"running": now} if status != "accepted" else {})}, **fields})
    return job_id


@pytest.fixture(scope="module")
def bucket(function_env) -> storage.Bucket:
    client = storage.Client(project=function_env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": function_env["STORAGE_EMULATOR_HOST"]})
    return client.bucket(function_env["VEO_BUCKET"])


class Case:
    """A call to one entry point, and what shows whether its step ran."""

    def __init__(self, send: Callable[[dict[str, str]], Any], state: Callable[[], Any]):
        self.send, self.state = send, state


def task_case(bare, rt, target: str, job_id: str, payload: dict[str, Any] | None = None) -> Case:
    body = {"job_id": job_id, **(payload or {})}
    return Case(lambda headers: bare(target).post("/", json=body, headers=headers), lambda: rt.store.get(job_id))


@pytest.fixture
def case(request, bare, rt, stack, bucket) -> tuple[Case, Callable[[Any], bool]]:
    """(the call, a predicate: did the step run, given the state after the valid call)."""
    target = request.param
    if target == "submit_job":  # overdue: the step fails it at once, without calling a provider
        job_id = seeded_job(rt, "accepted", overdue=True)
        return task_case(bare, rt, target, job_id), lambda job: job["error"]["code"] == "deadline_exceeded"
    if target == "stream_job":
        job_id = seeded_job(rt, "accepted", overdue=True, provider="genaipro", model="auto")
        return task_case(bare, rt, target, job_id), lambda job: job["error"]["code"] == "deadline_exceeded"
    if target == "poll_job":
        job_id = seeded_job(rt, "running", overdue=True, handle={"operation": "operations/none"})
        return task_case(bare, rt, target, job_id, {"poll": 1}), lambda job: job["error"]["code"] == "deadline_exceeded"
    if target == "finalize_job":  # downloading with nothing to download: the step fails it
        job_id = seeded_job(rt, "downloading", pending_outputs=[])
        return task_case(bare, rt, target, job_id), lambda job: job["error"]["code"] == "provider_error"
    if target == "deliver_webhook":
        hook = f"{stack.webhook_receiver_url}/hooks/internal-auth-{uuid.uuid4().hex[:8]}"
        job_id = seeded_job(rt, "running", webhook={"url": hook, "events": None})
        return (task_case(bare, rt, target, job_id, {"event": "job.running", "attempt": 1}),
                lambda job: [d["event"] for d in job.get("deliveries") or []] == ["job.running"])
    if target == "sweep_jobs":
        job_id = seeded_job(rt, "accepted", overdue=True)
        return (Case(lambda headers: bare(target).post("/", json={}, headers=headers), lambda: rt.store.get(job_id)),
                lambda job: job["status"] == "failed")
    if target == "on_request_object":
        blob = bucket.blob(f"requests/internal-auth-{uuid.uuid4().hex[:10]}.json")
        blob.upload_from_string(json.dumps({"prompt": "from the bucket [sim:never_finish]"}), content_type="application/json")
        result = blob.name.removesuffix(".json") + ".result.json"
        event = {"bucket": bucket.name, "name": blob.name, "generation": str(blob.generation), "size": str(blob.size),
                 "metageneration": "1", "contentType": "application/json"}

        def send(headers: dict[str, str]):
            return bare(target).post("/", json=event, headers={
                "ce-id": uuid.uuid4().hex, "ce-specversion": "1.0", "ce-type": "google.cloud.storage.object.v1.finalized",
                "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket.name}", "ce-subject": f"objects/{blob.name}",
                **headers})

        def cancel_it(state) -> bool:  # the job it started: stop it (it would run for ever)
            from veorelay.steps.cancel import cancel_job

            job = json.loads(state)["job"]
            cancel_job(rt, job["id"])
            return job["status"] == "accepted"

        return Case(send, lambda: (b.download_as_text() if (b := bucket.get_blob(result)) else None)), cancel_it
    raise AssertionError(target)


INTERNAL = ["submit_job", "poll_job", "stream_job", "finalize_job", "deliver_webhook", "sweep_jobs", "on_request_object"]


@pytest.mark.parametrize("case", INTERNAL, indirect=True)
def test_an_internal_function_runs_nothing_for_a_caller_without_the_invokers_token(case, stack, request):
    call, ran = case
    target = request.node.callspec.params["case"]
    before = call.state()
    for what, headers, status in refused_calls(stack, target):
        resp = call.send(headers)
        assert resp.status_code == status, f"{target}, {what}: {resp.status_code} {resp.get_data(as_text=True)[:200]}"
        assert resp.get_json()["status"] == ("unauthenticated" if status == 401 else "forbidden"), what
        assert call.state() == before, f"{target} ran for a call with {what}"

    resp = call.send(stack.invoker_headers(target))

    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert ran(call.state()), f"{target} did not run for the invoker's token"


def test_a_refused_event_is_answered_as_a_refusal_not_a_crash(bare, stack, bucket):
    """functions-framework answers 500 (and Eventarc retries) when a CloudEvent function raises;
    a refusal is raised as werkzeug's HTTPException instead, and sent as the 401/403 it is."""
    resp = bare("on_request_object").post("/", json={"bucket": bucket.name, "name": "requests/x.json", "generation": "1"},
                                          headers={"ce-id": "e1", "ce-specversion": "1.0", "ce-source": "//x",
                                                   "ce-type": "google.cloud.storage.object.v1.finalized",
                                                   "Authorization": f"Bearer {stack.oidc_token(own_url(stack, 'poll_job'))}"})
    assert resp.status_code == 403 and resp.get_json() == {
        "status": "forbidden", "message": "this function answers only the invoker's OIDC token for its own URL"}
    assert "crash" not in resp.headers.get("X-Google-Status", "")


def test_signing_keys_that_cannot_be_fetched_answer_503_so_the_queue_retries(function_env, rt, stack):
    """Not the caller's fault: a retry, not a refusal, and still nothing runs."""
    import dataclasses

    import flask

    from veorelay.edges.tasks import run_task
    from veorelay.gcp.oidc import IdTokenVerifier

    cold = dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, oidc_certs_url="http://127.0.0.1:9/certs"),
                               invoker_tokens=IdTokenVerifier())
    ran = []
    with flask.Flask(__name__).test_request_context("/", method="POST", json={"job_id": "0" * 32},
                                                    headers=stack.invoker_headers("poll_job")):
        resp = run_task(flask.request, cold, "poll_job", lambda rt, call: ran.append(call))
    assert (resp.status_code, resp.headers.get("Retry-After"), ran) == (503, "10", [])


def test_a_function_that_does_not_know_its_url_refuses_everyone(function_env, rt, stack):
    import dataclasses

    import flask

    from veorelay.edges.scheduler import handle

    lost = dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, internal_urls={}))
    with flask.Flask(__name__).test_request_context("/", method="POST", json={}, headers=stack.invoker_headers("sweep_jobs")):
        resp = handle(flask.request, lost)
    assert resp.status_code == 500 and resp.get_json()["status"] == "misconfigured"
