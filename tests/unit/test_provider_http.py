"""providers/http.py: the one mapping of a provider call's failure into the error vocabulary,
and every dialect going through it."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from veorelay.config import ProviderSettings
from veorelay.core.errors import ErrorCode, PermanentError, StepError, TransientError
from veorelay.core.request import parse_request
from veorelay.providers import flow, gemini, genaipro, http, litellm_gemini, newapi, vertex
from veorelay.providers.base import OutputRef, ProviderEnv


class Answer(requests.Response):
    """A real requests.Response with a canned body; records whether it was closed."""

    def __init__(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__()
        self.status_code = status
        self.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(headers or {})})
        self._content = body if isinstance(body, bytes) else json.dumps({} if body is None else body).encode()
        self._content_consumed = True
        self.encoding = "utf-8"
        self.url = "https://provider.test/x"
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Session:
    """Answers every call with `outcome()`: an Answer, or an exception to raise."""

    def __init__(self, outcome: Callable[[], Answer | BaseException]):
        self.outcome = outcome
        self.answers: list[Answer] = []
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Answer:
        self.calls.append((method, url, kwargs))
        result = self.outcome()
        if isinstance(result, BaseException):
            raise result
        self.answers.append(result)
        return result

    def get(self, url: str, **kwargs: Any) -> Answer:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Answer:
        return self.request("POST", url, **kwargs)


def in_two_minutes() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)


# ------------------------------------------------------------------------------ the mapping
@pytest.mark.parametrize("exc,code", [
    (requests.ConnectTimeout("connect"), ErrorCode.PROVIDER_TIMEOUT),
    (requests.ReadTimeout("read"), ErrorCode.PROVIDER_TIMEOUT),
    (requests.ConnectionError("refused"), ErrorCode.PROVIDER_UNAVAILABLE),
    (requests.exceptions.SSLError("bad certificate"), ErrorCode.PROVIDER_UNAVAILABLE),
    (requests.exceptions.ChunkedEncodingError("broken"), ErrorCode.PROVIDER_UNAVAILABLE),
])
def test_a_call_without_an_answer_is_transient(exc, code):
    failure = http.request_failure(exc, "newapi")
    assert isinstance(failure, TransientError) and failure.code == code and failure.retry_after_s is None
    assert "newapi" in failure.message


@pytest.mark.parametrize("status,headers,kind,code,retry_after", [
    (429, {"Retry-After": "12"}, TransientError, ErrorCode.QUOTA_EXCEEDED, 12.0),
    (429, {}, TransientError, ErrorCode.QUOTA_EXCEEDED, None),
    (500, {}, TransientError, ErrorCode.PROVIDER_UNAVAILABLE, None),
    (503, {"Retry-After": "3"}, TransientError, ErrorCode.PROVIDER_UNAVAILABLE, 3.0),
    (401, {}, PermanentError, ErrorCode.ACCESS_DENIED, None),
    (403, {}, PermanentError, ErrorCode.ACCESS_DENIED, None),
    (404, {}, PermanentError, ErrorCode.PROVIDER_ERROR, None),
    (410, {}, PermanentError, ErrorCode.PROVIDER_ERROR, None),
    (400, {}, PermanentError, ErrorCode.INVALID_REQUEST, None),
    (422, {}, PermanentError, ErrorCode.INVALID_REQUEST, None),
])
def test_each_error_status_has_its_place_in_the_vocabulary(status, headers, kind, code, retry_after):
    failure = http.status_failure(Answer(status, {"error": "x" * 2000}, headers), "gemini")
    assert type(failure) is kind and failure.code == code
    assert getattr(failure, "retry_after_s", None) == retry_after
    assert len(failure.provider_detail) == 500  # the answer, cut short, for the job's error


def test_retry_after_may_be_an_http_date():
    failure = http.status_failure(Answer(503, headers={"Retry-After": in_two_minutes()}), "vertex")
    assert isinstance(failure, TransientError) and 115 <= failure.retry_after_s <= 120


@pytest.mark.parametrize("status", [200, 201, 204, 302])
def test_other_statuses_are_no_failure(status):
    assert http.status_failure(Answer(status), "flow") is None


def test_the_caller_may_say_what_not_found_means():
    assert http.status_failure(Answer(404), "x", not_found=ErrorCode.NOT_FOUND).code == ErrorCode.NOT_FOUND


@pytest.mark.parametrize("status,code", [(401, ErrorCode.DOWNLOAD_EXPIRED), (403, ErrorCode.DOWNLOAD_EXPIRED),
                                         (404, ErrorCode.DOWNLOAD_EXPIRED), (410, ErrorCode.DOWNLOAD_EXPIRED),
                                         (429, ErrorCode.QUOTA_EXCEEDED), (502, ErrorCode.PROVIDER_UNAVAILABLE)])
def test_a_refused_download_is_an_expired_link(status, code):
    assert http.download_failure(Answer(status), "newapi").code == code


def test_send_closes_a_refused_answer_and_hands_over_a_good_one():
    refused = Session(lambda: Answer(503))
    with pytest.raises(TransientError):
        http.send(refused, "newapi", "GET", "https://n/x", stream=True)
    assert refused.answers[0].closed
    good = Session(lambda: Answer(200))
    assert not http.send(good, "newapi", "GET", "https://n/x", stream=True).closed
    assert good.calls[0][2]["timeout"] == http.DEFAULT_TIMEOUT


def test_an_answer_that_is_not_json_is_transient():
    with pytest.raises(TransientError) as caught:
        http.request_json(Session(lambda: Answer(200, b"<html>busy</html>", {"Content-Type": "text/html"})), "flow", "GET", "https://f")
    assert caught.value.code == ErrorCode.PROVIDER_UNAVAILABLE and "text/html" in caught.value.message


def test_a_download_timeout_names_the_download():
    with pytest.raises(TransientError) as caught:
        http.open_download(Session(lambda: requests.ReadTimeout("slow")), "genaipro", "https://files/v.mp4")
    assert caught.value.code == ErrorCode.PROVIDER_TIMEOUT and caught.value.message == "genaipro download did not answer in time"


# ------------------------------------------------------------------------------ every dialect
REQ = parse_request({"prompt": "a cat"})
HANDLES: dict[str, dict[str, Any]] = {
    "litellm-gemini": {"operation": "models/veo/operations/o"},
    "gemini": {"operation": "models/veo/operations/o"},
    "newapi": {"task_id": "T"},
    "flow": {"task_id": "T"},
    "genaipro": {"submitted_at": 1_800_000_000.0, "prompt": "a cat", "count": 1, "history_ids": ["h1"]},  # pinned (steps/recover.py)
    "vertex": {"operation": "projects/p/locations/l/publishers/google/models/m/operations/o", "model": "m", "storage_prefix": None},
}


def dialect(name: str, session: Session) -> Any:
    if name == "litellm-gemini":
        return litellm_gemini.LiteLLMGemini(ProviderSettings(name, "https://l", "k"), session)
    if name == "gemini":
        return gemini.Gemini(ProviderSettings(name, "https://g", "k"), session)
    if name == "newapi":
        return newapi.NewApi(ProviderSettings(name, "https://n", "k"), session)
    if name == "flow":
        return flow.Flow(ProviderSettings(name, "https://f", "k", {"GOOGLE_TOKEN": "t", "PROJECT_ID": "p"}), session)
    if name == "genaipro":
        return genaipro.Genaipro(ProviderSettings(name, "https://gp", "k"), session)
    return vertex.Vertex(ProviderSettings(name, "https://v", None, {"ACCESS_TOKEN": "ya29.t", "PROJECT": "p"}), session,
                         ProviderEnv(bucket="b"))


def calls(name: str, provider: Any) -> dict[str, Callable[[], Any]]:
    """Each call of the dialect that reaches the provider."""
    submit = (lambda: provider.open_stream(REQ, 30.0)) if name == "genaipro" else (lambda: provider.submit("J", REQ))
    return {"submit": submit, "check": lambda: provider.check(HANDLES[name])}


DIALECTS = sorted(HANDLES)
OUTCOMES: dict[str, tuple[Callable[[], Answer | BaseException], type[StepError], str, float | None]] = {
    "timeout": (lambda: requests.ReadTimeout("slow"), TransientError, ErrorCode.PROVIDER_TIMEOUT, None),
    "unreachable": (lambda: requests.ConnectionError("refused"), TransientError, ErrorCode.PROVIDER_UNAVAILABLE, None),
    "429": (lambda: Answer(429, {"error": "slow down"}, {"Retry-After": "7"}), TransientError, ErrorCode.QUOTA_EXCEEDED, 7.0),
    "503": (lambda: Answer(503, {"error": "busy"}, {"Retry-After": "2"}), TransientError, ErrorCode.PROVIDER_UNAVAILABLE, 2.0),
    "401": (lambda: Answer(401, {"error": "who are you"}), PermanentError, ErrorCode.ACCESS_DENIED, None),
    "400": (lambda: Answer(400, {"error": "bad"}), PermanentError, ErrorCode.INVALID_REQUEST, None),
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
@pytest.mark.parametrize("call", ["submit", "check"])
@pytest.mark.parametrize("name", DIALECTS)
def test_every_dialect_maps_failures_the_same_way(name, call, outcome):
    make, kind, code, retry_after = OUTCOMES[outcome]
    session = Session(make)
    with pytest.raises(StepError) as caught:
        calls(name, dialect(name, session))[call]()
    assert type(caught.value) is kind and caught.value.code == code
    assert getattr(caught.value, "retry_after_s", None) == retry_after
    assert all(answer.closed for answer in session.answers)  # a refused answer is never left open


@pytest.mark.parametrize("name", [n for n in DIALECTS if n != "vertex"])  # Vertex's outputs are in the bucket or inline
def test_every_dialect_maps_a_refused_download_to_an_expired_link(name):
    session = Session(lambda: Answer(403, b"expired", {"Content-Type": "text/plain"}))
    with pytest.raises(PermanentError) as caught:
        dialect(name, session).open_output(OutputRef(0, url="https://files.test/v.mp4"))
    assert caught.value.code == ErrorCode.DOWNLOAD_EXPIRED and session.answers[0].closed
