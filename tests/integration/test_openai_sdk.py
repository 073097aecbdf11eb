"""The official `openai` SDK (requirements-dev.txt), unchanged, pointed at the local stack's
/v1 with `base_url`: every videos call a client makes, end to end over the real emulators, and
veo-relay's webhooks verified with the SDK's own verifier as well as with standardwebhooks."""
from __future__ import annotations

import time
import uuid
import warnings

import openai
import pytest
import requests
import standardwebhooks
from openai import OpenAI

from dev.stack import DEV_WEBHOOK_SECRET

from .helpers import landed_job_json, unique_prompt
from .provider_helpers import png

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FRAME = png(rgb=b"\x10\x80\x20")


@pytest.fixture(scope="module")
def sdk(stack) -> OpenAI:
    """The SDK as a user builds it: our base URL and API key, no other change."""
    return OpenAI(base_url=stack.function_urls["api"].rstrip("/") + "/v1", api_key=stack.api_key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def completed(sdk, client):
    """One video made with create_and_poll (multipart with a file, veo-relay fields in extra_body),
    and what the SDK saw on the way."""
    prompt = unique_prompt("a kite over the dunes")
    key = f"openai-{uuid.uuid4().hex}"
    hook_url, hook_path = client.hook_url("openai")
    started = time.monotonic()
    video = sdk.videos.create_and_poll(
        prompt=prompt, seconds="8", size="720x1280", input_reference=("frame.png", FRAME, "image/png"),
        extra_body={"negative_prompt": "rain", "metadata": {"order": "7"}, "webhook_url": hook_url},
        extra_headers={"Idempotency-Key": key})
    return {"video": video, "prompt": prompt, "hook_path": hook_path, "hook_url": hook_url,
            "seconds": time.monotonic() - started, "key": key}


def test_create_and_poll_ends_completed_as_the_sdk_types_it(completed, client):
    video = completed["video"]
    assert isinstance(video, openai.types.Video)
    assert (video.object, video.status, video.progress, video.seconds, video.size) == ("video", "completed", 100, "8", "720x1280")
    assert video.prompt == completed["prompt"] and video.error is None
    assert video.completed_at >= video.created_at and video.expires_at > video.completed_at
    # The native job behind it: the size and seconds mapped, the file as the first frame, extra_body honoured.
    job = client.job(video.id)
    assert job["status"] == "succeeded"
    assert (job["request"]["aspect_ratio"], job["request"]["resolution"], job["request"]["duration_seconds"]) == ("9:16", "720p", 8)
    assert job["request"]["image"]["gcs_uri"].startswith("gs://") and job["request"]["negative_prompt"] == "rain"
    assert job["metadata"] == {"order": "7"}


def test_the_same_idempotency_key_answers_the_same_video(sdk, completed):
    again = sdk.videos.create(prompt=completed["prompt"], seconds="8", size="720x1280",
                              input_reference=("frame.png", FRAME, "image/png"),
                              extra_body={"negative_prompt": "rain", "metadata": {"order": "7"}, "webhook_url": completed["hook_url"]},
                              extra_headers={"Idempotency-Key": completed["key"]})
    assert again.id == completed["video"].id and again.status == "completed"
    with pytest.raises(openai.ConflictError) as err:  # the key again with another request
        sdk.videos.create(prompt=completed["prompt"] + " (changed)", extra_headers={"Idempotency-Key": completed["key"]})
    assert err.value.body["param"] == "Idempotency-Key"


def test_download_content_is_the_bucket_object(sdk, completed, bucket):
    video = completed["video"]
    content = sdk.videos.download_content(video.id)
    stored = bucket.blob(f"videos/{video.id}/0.mp4").download_as_bytes()
    assert content.read() == stored and stored[4:8] == b"ftyp"
    assert content.response.headers["content-type"] == "video/mp4"


def test_thumbnail_is_the_poster_jpeg(sdk, completed, bucket, client):
    video = completed["video"]
    poster = client.job(video.id)["outputs"][0]["poster"]
    assert poster is not None and poster["name"].endswith("/0.jpg"), "the MP4 step stores a poster beside each video"
    thumbnail = sdk.videos.download_content(video.id, variant="thumbnail")
    assert thumbnail.read() == bucket.blob(poster["name"]).download_as_bytes()
    assert thumbnail.response.headers["content-type"] == "image/jpeg"


def test_spritesheet_is_a_clear_400(sdk, completed):
    with pytest.raises(openai.BadRequestError) as err:
        sdk.videos.download_content(completed["video"].id, variant="spritesheet")
    assert err.value.body["code"] == "unsupported_option" and "spritesheet" in err.value.body["message"]
    assert err.value.body["param"] == "variant" and err.value.body["type"] == "invalid_request_error"


def test_retrieve_carries_the_poll_hint_while_in_progress(sdk):
    """poll() sleeps what `openai-poll-after-ms` says: present (a number of ms) until the video ends."""
    video = sdk.videos.create(prompt=unique_prompt("a lighthouse at dusk"), seconds="4")
    assert video.status == "queued"
    hints = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        raw = sdk.videos.with_raw_response.retrieve(video.id)
        now = raw.parse()
        hints.append((now.status, raw.headers.get("openai-poll-after-ms")))
        if now.status in ("completed", "failed"):
            break
        time.sleep(0.3)
    assert hints[-1] == ("completed", None), hints
    waiting = [int(ms) for status, ms in hints if status in ("queued", "in_progress")]
    assert waiting and all(250 <= ms <= 60_000 for ms in waiting), hints
    # The stack checks the provider every 0.5-1 s (tests/conftest.py FAST_POLLING): the hint follows it.
    assert max(waiting) <= 1250, hints


def test_a_json_create_is_the_same_video(stack, sdk):
    resp = requests.post(f"{sdk.base_url}videos", timeout=30, headers={"Authorization": f"Bearer {stack.api_key}"},
                         json={"prompt": unique_prompt("a red door"), "seconds": "6", "size": "1280x720",
                               "provider": stack.env.get("VEO_DEFAULT_PROVIDER") or "litellm-gemini"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["object"], body["status"], body["seconds"], body["size"]) == ("video", "queued", "6", "1280x720")
    assert sdk.videos.retrieve(body["id"]).id == body["id"]


def test_list_pages_with_after_limit_and_order(sdk):
    marker = sdk.videos.create(prompt=unique_prompt("page test marker"), seconds="4").id  # older jobs of other tests come before it
    ids = [sdk.videos.create(prompt=unique_prompt(f"page test {i}"), seconds="4").id for i in range(3)]
    first = sdk.videos.list(limit=2)
    assert [v.id for v in first.data] == ids[::-1][:2] and first.has_more is True
    assert first.last_id == ids[1]
    second = first.get_next_page()  # the SDK asks with after=<last_id>
    assert second.data[0].id == ids[0]
    seen = [v.id for v in sdk.videos.list(limit=2)]  # auto-pagination walks every page
    assert seen[:3] == ids[::-1] and len(seen) == len(set(seen))
    oldest_first = [v.id for v in sdk.videos.list(limit=3, order="asc", after=marker).data]
    assert oldest_first == ids


def test_delete_removes_the_files_and_the_video(sdk, completed, bucket, client):
    video_id = completed["video"].id
    names = [f"videos/{video_id}/0.mp4", f"videos/{video_id}/0.jpg", landed_job_json(bucket, video_id).name]
    assert all(bucket.blob(n).exists() for n in names)
    deleted = sdk.videos.delete(video_id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video_id, True, "video.deleted")
    assert not any(bucket.blob(n).exists() for n in names)
    with pytest.raises(openai.NotFoundError) as err:
        sdk.videos.retrieve(video_id)
    assert err.value.body == {"message": "no such video", "type": "not_found_error", "param": "video_id", "code": "not_found"}
    with pytest.raises(openai.NotFoundError):
        sdk.videos.download_content(video_id)
    assert client.get(video_id).status_code == 404  # the native API agrees
    assert video_id not in [v.id for v in sdk.videos.list(limit=100).data]
    assert sdk.videos.delete(video_id).deleted is True  # sent again (a lost answer): the same outcome


def test_delete_of_a_video_still_running_is_409(sdk, client):
    video = sdk.videos.create(prompt=unique_prompt("a slow one", "[sim:duration=30]"), seconds="4")
    with pytest.raises(openai.ConflictError) as err:
        sdk.videos.delete(video.id)
    assert "cancel it first" in err.value.body["message"]
    client.cancel(video.id)


@pytest.mark.parametrize("call", ["remix", "edit", "create_character", "get_character"])
def test_what_veo_cannot_do_is_a_400_not_a_404(sdk, completed, call):
    with pytest.raises(openai.BadRequestError) as err:
        if call == "remix":
            sdk.videos.remix(completed["video"].id, prompt="make it night")
        elif call == "edit":
            sdk.videos.edit(prompt="make it night", video=("in.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4"))
        elif call == "create_character":
            sdk.videos.create_character(name="fox", video=("fox.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4"))
        else:
            sdk.videos.get_character("char_123")
    assert err.value.body["code"] == "unsupported_option" and "not supported" in err.value.body["message"]


def test_bad_input_is_an_openai_error_naming_the_param(sdk):
    with pytest.raises(openai.BadRequestError) as err:
        sdk.videos.create(prompt="a fox", size="1792x1024")  # a Sora size Veo does not make
    assert err.value.body["param"] == "size" and "1920x1080" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        sdk.videos.create(prompt="a fox", seconds="5")  # not a duration the provider makes
    assert err.value.body["param"] == "duration_seconds"
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=str(sdk.base_url), api_key="not-a-key", max_retries=0).videos.list()


def test_webhooks_verify_with_the_openai_sdk_and_with_standardwebhooks(completed, client):
    hooks = client.webhooks(completed["hook_path"], event="job.succeeded")
    assert hooks, "no job.succeeded webhook received"
    hook = hooks[0]
    # standardwebhooks, as README "Verifying a webhook" shows.
    event = standardwebhooks.Webhook(DEV_WEBHOOK_SECRET).verify(hook["body"], hook["headers"])
    assert event["data"]["id"] == completed["video"].id
    # The openai SDK's verifier (client.webhooks), which implements the same scheme.
    verifier = OpenAI(api_key="unused", webhook_secret=DEV_WEBHOOK_SECRET)
    verifier.webhooks.verify_signature(hook["body"], hook["headers"])
    unwrapped = verifier.webhooks.unwrap(hook["body"], hook["headers"])
    # unwrap parses into one of OpenAI's own event models, loosely: veo-relay's fields are all there.
    assert unwrapped.type == "job.succeeded" and unwrapped.data.id == completed["video"].id
    assert unwrapped.to_dict()["data"]["status"] == "succeeded"
    forged = hook["body"].replace(completed["video"].id, "0" * 32)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        verifier.webhooks.verify_signature(forged, hook["headers"])
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(DEV_WEBHOOK_SECRET).verify(forged, hook["headers"])


def test_the_sdk_warns_nothing_but_its_own_deprecation(sdk):
    """Sanity: the calls above ran with only the SDK's Sora deprecation notice silenced."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sdk.videos.list(limit=1)
    assert all(issubclass(w.category, DeprecationWarning) for w in caught)
