"""The simulators push completion events like Google (dev/simulators/push.py): the Gemini API's
static webhook (registered through its WebhookService, Standard Webhooks HMAC) and per-request
webhooks (RS256 JWT, the simulator's JWKS), Vertex's Pub/Sub push (OIDC token); each checked
here with veo-relay's own verifiers; and the directives that drop or duplicate an event."""
from __future__ import annotations

import base64
import json
import threading
import time

import pytest
import requests
import standardwebhooks
from flask import Flask, request
from werkzeug.serving import make_server

from veorelay.gcp.oidc import CertCache, IdTokenVerifier
from veorelay.gcp.push_auth import JwksCache, PushRefused, verify_request_jwt

GKEY = {"x-goog-api-key": "sim-key-gemini"}
VAUTH = {"Authorization": "Bearer sim-key-vertex"}
TOPIC = "projects/proj-1/topics/veo-done"
PUSHER = "pusher@proj-1.iam.gserviceaccount.com"


@pytest.fixture
def receiver():
    got: list[dict] = []
    app = Flask("receiver")

    @app.post("/<path:path>")
    def hook(path):
        got.append({"path": "/" + path, "headers": dict(request.headers), "body": request.get_data()})
        return "", 200

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.port}", got
    server.shutdown()


def wait(got: list, count: int, timeout_s: float = 5.0) -> list:
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # nothing more should come
    return list(got)


def gemini(sim, prompt: str, **body) -> str:
    r = requests.post(f"{sim.url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning", headers=GKEY,
                      json={"instances": [{"prompt": prompt}], **body})
    assert r.status_code == 200, r.text
    return r.json()["name"]


def test_the_static_webhook_registered_through_the_webhook_service_gets_signed_events(sim, receiver):
    url, got = receiver
    created = requests.post(f"{sim.url}/v1beta/webhooks", headers=GKEY,
                            json={"name": "veo", "uri": f"{url}/static", "subscribed_events": ["video.generated"]}).json()
    secret = created["new_signing_secret"]
    name = gemini(sim, "waves [sim:duration=0.2]")

    (event,) = wait(got, 1)
    payload = standardwebhooks.Webhook(secret).verify(event["body"], {k.lower(): v for k, v in event["headers"].items()})
    assert payload["type"] == "video.generated" and payload["data"]["name"] == name
    assert requests.get(f"{sim.url}/v1beta/{name}", headers=GKEY).json()["done"] is True  # sent once it is done


def test_a_per_request_webhook_gets_a_jwt_for_its_uri_signed_by_the_published_keys(sim, receiver):
    url, got = receiver
    uri = f"{url}/job?job=abc"
    name = gemini(sim, "dunes [sim:duration=0.2]", webhookConfig={"uris": [uri], "userMetadata": {"job_id": "abc"}})

    (event,) = wait(got, 1)
    token = event["headers"]["Webhook-Signature"]
    claims = verify_request_jwt(token, audiences=[uri], jwks=JwksCache(), jwks_url=f"{sim.url}/_sim/jwks.json")
    assert claims["aud"] == uri
    data = json.loads(event["body"])["data"]
    assert data["name"] == name and data["user_metadata"] == {"job_id": "abc"}


def test_vertex_pushes_through_pub_sub_with_an_oidc_token(sim, receiver, monkeypatch):
    url, got = receiver
    monkeypatch.setenv("VEO_SIM_PUBSUB_PUSH", json.dumps({TOPIC: {"endpoint": f"{url}/pubsub", "service_account": PUSHER}}))
    sim.reset()  # the push subscriptions are read from the environment again
    path = "/v1/projects/proj-1/locations/us-central1/publishers/google/models/veo-3.1-generate-001"
    r = requests.post(f"{sim.url}{path}:predictLongRunning", headers=VAUTH,
                      json={"instances": [{"prompt": "rain [sim:duration=0.2]"}], "parameters": {"pubsubTopic": TOPIC}})
    name = r.json()["name"]

    (event,) = wait(got, 1)
    verifier = IdTokenVerifier(CertCache())
    caller = verifier.verify(event["headers"]["Authorization"], own_urls=(f"{url}/pubsub",), email=PUSHER,
                             certs_url=f"{sim.url}/_sim/oidc/certs")
    assert caller.email == PUSHER
    message = json.loads(event["body"])["message"]
    assert json.loads(base64.b64decode(message["data"])) == {"name": name, "done": True}


def test_events_can_be_dropped_duplicated_or_badly_signed(sim, receiver):
    url, got = receiver
    uri = f"{url}/job?job=x"
    gemini(sim, "a [sim:duration=0.1,event_drop]", webhookConfig={"uris": [uri]})
    assert wait(got, 1, timeout_s=1.0) == []

    gemini(sim, "b [sim:duration=0.1,event_dup=2]", webhookConfig={"uris": [uri]})
    events = wait(got, 2)
    assert len(events) == 2 and events[0]["headers"]["Webhook-Id"] == events[1]["headers"]["Webhook-Id"]

    got.clear()
    gemini(sim, "c [sim:duration=0.1,event_badsig]", webhookConfig={"uris": [uri]})
    (bad,) = wait(got, 1)
    with pytest.raises(PushRefused):
        verify_request_jwt(bad["headers"]["Webhook-Signature"], audiences=[uri], jwks=JwksCache(),
                           jwks_url=f"{sim.url}/_sim/jwks.json")
