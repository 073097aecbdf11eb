"""litellm-gemini (doc 000), plus the generic fault directives, exercised here once."""

from __future__ import annotations

import hashlib
import time

import pytest
import requests
import urllib3

from dev.simulators.mp4check import check_mp4

MODEL = "veo-3.1-generate-preview"
KEY = {"x-goog-api-key": "sim-key-litellm-gemini"}
GOOGLE = "https://generativelanguage.googleapis.com/"


def submit(sim, prompt, key=KEY, **body):
    return requests.post(f"{sim.url}/gemini/v1beta/models/{MODEL}:predictLongRunning",
                         headers=key, json={"instances": [{"prompt": prompt}], **body})


def poll(sim, name, key=KEY):
    return requests.get(f"{sim.url}/gemini/v1beta/{name}", headers=key)


def finished(sim, name, until):
    return until(lambda: (lambda d: d if d.get("done") else None)(poll(sim, name).json()))


def proxy_url(sim, uri):
    # The doc's client rewrite: Google file URI -> the proxy's /gemini/download/ route.
    assert uri.startswith(GOOGLE)
    return f"{sim.url}/gemini/download/{uri[len(GOOGLE):]}"


def run_to_done(sim, prompt, until, **body):
    r = submit(sim, prompt, **body)
    assert r.status_code == 200, r.text
    return r.json()["name"], finished(sim, r.json()["name"], until)


def test_happy_path_three_samples(sim, until):
    r = submit(sim, "a hummingbird", parameters={"sampleCount": 3, "aspectRatio": "16:9"})
    assert r.status_code == 200
    name = r.json()["name"]
    assert list(r.json()) == ["name"]
    assert name.startswith(f"models/{MODEL}/operations/")
    op_id = name.rsplit("/", 1)[1]

    running = poll(sim, name)
    assert running.status_code == 200 and running.json() == {"name": name}

    done = finished(sim, name, until)
    assert set(done) == {"name", "done", "response"}
    resp = done["response"]
    assert resp["@type"] == ("type.googleapis.com/google.ai.generativelanguage.v1beta."
                             "PredictLongRunningResponse")
    samples = resp["generateVideoResponse"]["generatedSamples"]
    assert len(samples) == 3

    reported = {o["index"]: o for o in sim.operation(op_id)["outputs"]}
    shas = set()
    for i, sample in enumerate(samples):
        uri = sample["video"]["uri"]
        assert uri.startswith(GOOGLE + "v1beta/files/") and uri.endswith(":download?alt=media")
        got = requests.get(proxy_url(sim, uri), headers=KEY)
        assert got.status_code == 200
        assert got.headers["Content-Type"] == "video/mp4"
        assert int(got.headers["Content-Length"]) == len(got.content)
        check_mp4(got.content)
        sha = hashlib.sha256(got.content).hexdigest()
        assert reported[i]["sha256"] == sha and reported[i]["size"] == len(got.content)
        shas.add(sha)
    assert len(shas) == 3  # every output distinct

    kinds = [c["kind"] for c in sim.calls(dialect="litellm-gemini", op_id=op_id)]
    assert kinds[0] == "submit" and "poll" in kinds and kinds.count("download") == 3


@pytest.mark.parametrize("headers,status", [({}, 401), ({"x-goog-api-key": "nope"}, 401)])
def test_auth_refused(sim, headers, status):
    r = submit(sim, "x", key=headers)
    assert r.status_code == status
    assert r.json()["error"]["status"] == "UNAUTHENTICATED"
    name, _ = run_to_done(sim, "ok", lambda f, **k: _wait(f))
    assert poll(sim, name, key=headers).status_code == status


def _wait(fn):
    for _ in range(100):
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError


def test_bad_request(sim):
    r = requests.post(f"{sim.url}/gemini/v1beta/models/{MODEL}:predictLongRunning",
                      headers=KEY, json={"instances": [{"prompt": "x"}],
                                         "parameters": {"sampleCount": 9}})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = requests.post(f"{sim.url}/gemini/v1beta/models/{MODEL}:predictLongRunning",
                      headers=KEY, data="not json")
    assert r.status_code == 400


def test_submit_429_always_with_retry_after(sim):
    for _ in range(3):
        r = submit(sim, "busy [sim:submit_429]")
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize("code", [500, 503])
def test_submit_5xx(sim, code):
    r = submit(sim, f"x [sim:submit_{code}]")
    assert r.status_code == code


def test_submit_counted_by_key_and_by_prompt(sim):
    codes = [submit(sim, f"attempt {i} [sim:submit_500x2,key=k1]").status_code for i in range(3)]
    assert codes == [500, 500, 200]  # prompts differ, key= ties them together
    codes = [submit(sim, "same prompt [sim:submit_429x2]").status_code for _ in range(3)]
    assert codes == [429, 429, 200]


def test_poll_500x2_then_ok(sim, until):
    name = submit(sim, "p [sim:poll_500x2,duration=0]").json()["name"]
    assert [poll(sim, name).status_code for _ in range(3)] == [500, 500, 200]


def test_poll_garbage_and_html(sim):
    name = submit(sim, "g [sim:poll_garbage]").json()["name"]
    r = poll(sim, name)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    name = submit(sim, "h [sim:poll_html]").json()["name"]
    r = poll(sim, name)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")


def test_poll_reset_drops_connection(sim):
    name = submit(sim, "r [sim:poll_resetx1]").json()["name"]
    with pytest.raises(requests.ConnectionError):
        poll(sim, name)
    assert poll(sim, name).status_code == 200  # x1: only the first poll


def test_slow_poll(sim):
    name = submit(sim, "s [sim:slow_poll=0.4]").json()["name"]
    t = time.monotonic()
    assert poll(sim, name).status_code == 200
    assert time.monotonic() - t >= 0.4


def test_slow_submit(sim):
    t = time.monotonic()
    assert submit(sim, "s [sim:slow_submit=0.4]").status_code == 200
    assert time.monotonic() - t >= 0.4


def test_op_error(sim, until):
    _, done = run_to_done(sim, "e [sim:op_error]", until)
    assert done["error"] == {"code": 13, "message": done["error"]["message"], "status": "INTERNAL"}
    assert "response" not in done


def test_rai_filtered(sim, until):
    _, done = run_to_done(sim, "f [sim:rai_filtered]", until)
    gvr = done["response"]["generateVideoResponse"]
    assert gvr["raiMediaFilteredCount"] == 1 and len(gvr["raiMediaFilteredReasons"]) == 1
    assert "generatedSamples" not in gvr


def test_empty_success(sim, until):
    _, done = run_to_done(sim, "e [sim:empty_success]", until)
    assert done["response"]["generateVideoResponse"] == {}


def test_never_finish_and_duration(sim, until):
    name = submit(sim, "n [sim:never_finish,duration=0]").json()["name"]
    # An operation submitted after it, with the same duration=0, is done: the first one would be too.
    finished(sim, submit(sim, "control [sim:duration=0]").json()["name"], until)
    assert poll(sim, name).json() == {"name": name}
    started = time.monotonic()
    name = submit(sim, "d [sim:duration=0.6]").json()["name"]
    time.sleep(0.35)  # past the default 0.3 s, before 0.6 s
    assert "done" not in poll(sim, name).json()
    finished(sim, name, until)
    assert time.monotonic() - started >= 0.6


def _first_download(sim, prompt, until):
    _, done = run_to_done(sim, prompt, until)
    uri = done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    return proxy_url(sim, uri)


def test_download_expired_403(sim, until):
    r = requests.get(_first_download(sim, "x [sim:expired]", until), headers=KEY)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_download_needs_key(sim, until):
    url = _first_download(sim, "x", until)
    assert requests.get(url).status_code == 401


def test_download_html_200(sim, until):
    r = requests.get(_first_download(sim, "x [sim:html_200]", until), headers=KEY)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")


def test_download_truncated(sim, until):
    url = _first_download(sim, "x [sim:truncated]", until)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = requests.get(url, headers=KEY).content  # reading the body is what raises
    r = requests.get(url, headers=KEY, stream=True)
    declared = int(r.headers["Content-Length"])
    got = b""
    with pytest.raises(urllib3.exceptions.ProtocolError, match="IncompleteRead"):
        for chunk in r.raw.stream(65536, decode_content=False):
            got += chunk
    assert len(got) == declared // 2  # the first half, then the connection ends


def test_download_wrong_length(sim, until):
    url = _first_download(sim, "x [sim:wrong_length]", until)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = requests.get(url, headers=KEY).content  # reading the body is what raises


def test_download_redirect(sim, until):
    url = _first_download(sim, "x [sim:redirect]", until)
    r = requests.get(url, headers=KEY, allow_redirects=False)
    assert r.status_code == 302 and "/_sim/blob/" in r.headers["Location"]
    r = requests.get(url, headers=KEY)
    assert r.status_code == 200 and r.history[0].status_code == 302
    check_mp4(r.content)


def test_size_padding_and_range(sim, until):
    name, done = run_to_done(sim, "big [sim:size=3M]", until)
    url = proxy_url(sim, done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"])
    r = requests.get(url, headers=KEY)
    assert len(r.content) == 3 * 1024 * 1024
    boxes = check_mp4(r.content)
    assert [b[0] for b in boxes][-2:] == [b"free", b"free"]
    (out,) = sim.operation(name.rsplit("/", 1)[1])["outputs"]
    assert out["sha256"] == hashlib.sha256(r.content).hexdigest()
    part = requests.get(url, headers={**KEY, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == r.content[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(r.content)}"


def test_global_video_size(sim, until):
    sim.config(video_size=100_000)
    r = requests.get(_first_download(sim, "x", until), headers=KEY)
    assert len(r.content) == 100_000
    check_mp4(r.content)


@pytest.mark.parametrize("directive", ["rai_filter", "duration=abc", "size=lots", "submit_4299"])
def test_bad_directive_is_a_400(sim, directive):
    r = submit(sim, f"x [sim:{directive}]")
    assert r.status_code == 400 and "[sim:]" in r.json()["error"]["message"]


def test_expired_after_delay(sim, until):
    url = _first_download(sim, "x [sim:expired=0.3]", until)
    assert requests.get(url, headers=KEY).status_code == 200
    time.sleep(0.35)
    assert requests.get(url, headers=KEY).status_code == 403
