"""genaipro dialect (doc 002 + the README's public facts): answers are SSE streams.

    POST /api/v1/veo/text-to-video         JSON  prompt, aspect_ratio, number_of_videos
    POST /api/v1/veo/frames-to-video       multipart start_image (+end_image), prompt,
                                           aspect_ratio, number_of_videos (string)
    POST /api/v1/veo/ingredients-to-video  multipart 1-3 reference_images, prompt,
                                           number_of_videos (string, required)
    GET  /api/v1/veo/histories?page=&page_size=
    GET  /media/genaipro/{id}.mp4          the file_url the complete event gives (no auth)
    Authorization: Bearer <key> on the API routes.

Stream, framed exactly as doc 002 (one `event:` line, one `data:` line, blank
line; data is JSON), each event flushed when it happens, spread over the
generation time:
    event: video_generation_status / data: "starting"          at once
    event: video_generation_status / data: "uploading_images"  only with images
    event: video_generation_status / data: "processing"
    event: video_generation_complete / data: [{id, prompt, file_url, status, created_at}]
 or event: error / data: {"code": ..., "message": ...}   (shape not documented; ours)

Directive history_twin: a second generation of the same prompt, 2 s older, shows in the
histories (another client of the account), so a client matching by prompt sees two.

Histories (not in doc 002): by default ONE ENTRY PER VIDEO whose id equals the
id in the complete event, file_urls = [that video's url]; config
genaipro_history_grouping=per_generation gives one entry per submit with all N
file_urls instead. Entries exist from submit on (status PENDING/ACTIVE, no
file_urls) and turn SUCCESSFUL or FAILED. A client recovering from a broken
stream should match entries by prompt and created_at and flatten file_urls.
"""

from __future__ import annotations

import json
import math
import select
import socket
import struct
import time

from flask import Blueprint, Response, jsonify, request

from . import media
from .common import Directives, Operation, SimState, base_url, bearer, expected_key, json_body, json_error, state, submit_fault

DIALECT = "genaipro"
ASPECT_RATIOS = {"VIDEO_ASPECT_RATIO_LANDSCAPE", "VIDEO_ASPECT_RATIO_PORTRAIT"}
SUCCESSFUL = "MEDIA_GENERATION_STATUS_SUCCESSFUL"
FAILED = "MEDIA_GENERATION_STATUS_FAILED"
NEVER_FINISH_CAP_S = 3600

bp = Blueprint("genaipro", __name__)


def error(status: int, message: str) -> Response:
    return json_error(status, {"error": message, "message": message, "status": status})


def check_auth() -> Response | None:
    token = bearer()
    if not token or token != expected_key(DIALECT):
        return error(401, "Unauthorized: invalid or missing API token")
    return None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _count(raw, required: bool) -> int | str:
    """number_of_videos: 1-4, a string in form data (an int is fine in JSON)."""
    if raw in (None, ""):
        return "number_of_videos is required" if required else 1
    try:
        n = int(str(raw).strip())
    except ValueError:
        return "number_of_videos must be a number between 1 and 4"
    return n if 1 <= n <= 4 else "number_of_videos must be between 1 and 4"


def _aspect(raw) -> str | None:
    if raw in (None, ""):
        return "VIDEO_ASPECT_RATIO_LANDSCAPE"
    return raw if raw in ASPECT_RATIOS else None


def _file_ok(f) -> bool:
    return f is not None and bool(f.filename) and bool(f.read(1))


@bp.post("/api/v1/veo/text-to-video")
def text_to_video():
    if (denied := check_auth()) is not None:
        return _refused(denied)
    body = json_body()
    if body is None:
        return _refused(error(400, "body must be JSON: prompt, aspect_ratio, number_of_videos"))
    return _start(body.get("prompt"), body.get("aspect_ratio"), body.get("number_of_videos"),
                  images=0, count_required=False, kind="text-to-video")


@bp.post("/api/v1/veo/frames-to-video")
def frames_to_video():
    if (denied := check_auth()) is not None:
        return _refused(denied)
    start = request.files.get("start_image")
    if not _file_ok(start):
        return _refused(error(400, "start_image is required"))
    end = request.files.get("end_image")
    if end is not None and not _file_ok(end):
        return _refused(error(400, "end_image is empty"))
    f = request.form
    return _start(f.get("prompt"), f.get("aspect_ratio"), f.get("number_of_videos"),
                  images=1 + (end is not None), count_required=False, kind="frames-to-video")


@bp.post("/api/v1/veo/ingredients-to-video")
def ingredients_to_video():
    if (denied := check_auth()) is not None:
        return _refused(denied)
    refs = request.files.getlist("reference_images")
    if not 1 <= len(refs) <= 3 or not all(_file_ok(r) for r in refs):
        return _refused(error(400, "reference_images: 1 to 3 image files are required"))
    f = request.form
    # Doc 002: the aspect ratio is fixed to landscape here, so aspect_ratio is ignored.
    return _start(f.get("prompt"), None, f.get("number_of_videos"), images=len(refs),
                  count_required=True, kind="ingredients-to-video")


def _refused(resp: Response) -> Response:
    state().record(DIALECT, "submit", None, resp.status_code)
    return resp


def _start(prompt, aspect, count, *, images: int, count_required: bool, kind: str) -> Response:
    st = state()
    if not isinstance(prompt, str) or not prompt.strip():
        return _refused(error(400, "prompt is required"))
    n = _count(count, count_required)
    if isinstance(n, str):
        return _refused(error(400, n))
    aspect_ratio = _aspect(aspect)
    if aspect_ratio is None:
        return _refused(error(400, "aspect_ratio must be VIDEO_ASPECT_RATIO_LANDSCAPE or "
                                   "VIDEO_ASPECT_RATIO_PORTRAIT"))
    directives = Directives(prompt)
    fault = submit_fault(st, DIALECT, directives, prompt, error)
    if fault is not None:
        st.record(DIALECT, "submit", None, fault.status_code, prompt=prompt)
        return fault
    op = st.create_operation(DIALECT, prompt, kind, n, directives=directives,
                             extra={"aspect_ratio": aspect_ratio, "images": images})
    root = base_url()
    if directives.has("history_twin"):
        # Someone else on the account sent the same prompt two seconds earlier (not a submit of
        # ours: not in the call log): the histories hold two generations of it.
        twin = st.create_operation(DIALECT, prompt, kind, n, directives=directives,
                                   extra={"aspect_ratio": aspect_ratio, "images": images, "twin_of": op.id})
        twin.created_at = op.created_at - 2.0
        for out in twin.outputs:
            out.url = out.download_url = f"{root}/media/genaipro/{out.file_id}.mp4"
    for out in op.outputs:
        out.url = out.download_url = f"{root}/media/genaipro/{out.file_id}.mp4"
    st.record(DIALECT, "submit", op, 200)
    sock = request.environ.get("werkzeug.socket")
    return Response(_events(st, op, images > 0, sock), status=200, headers={
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })


def _sse(event: str, data) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _sleep_until(at: float) -> None:
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)


def _client_gone(sock) -> bool:
    """True once the peer has closed (readable with EOF); we never expect input."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _events(st: SimState, op: Operation, with_images: bool, sock):
    """The SSE body; werkzeug writes and flushes each yielded chunk at once."""
    d, t0 = op.directives, op.created_at
    end = "complete"
    try:
        yield _sse("video_generation_status", "starting")
        if with_images:
            _sleep_until(t0 + 0.1 * op.duration)
            yield _sse("video_generation_status", "uploading_images")
        _sleep_until(t0 + 0.2 * op.duration)
        yield _sse("video_generation_status", "processing")

        if d.has("stream_break"):
            end = "break"  # clean end of stream, no complete event; job still finishes
            return
        if d.has("stream_reset"):
            end = "reset"
            if sock is not None:  # RST rather than FIN, like a proxy cutting the stream
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise ConnectionAbortedError("simulated stream reset")
        if d.has("never_finish"):
            end = "client_gone"
            deadline = time.time() + NEVER_FINISH_CAP_S
            while time.time() < deadline and not _client_gone(sock):
                time.sleep(0.2)
            return

        _sleep_until(op.done_at)
        if op.outcome in ("success", "empty"):
            outputs = op.outputs if op.outcome == "success" else []
            yield _sse("video_generation_complete", [
                {"id": o.file_id, "prompt": op.prompt, "file_url": o.url,
                 "status": SUCCESSFUL, "created_at": _iso(op.created_at)} for o in outputs])
        else:
            end = "error"
            yield _sse("error", _error_object(op))
    except GeneratorExit:  # the client went away mid-stream
        end = "client_gone"
        raise
    finally:
        st.record(DIALECT, "stream", op, 200, end=end)


def _error_object(op: Operation) -> dict:
    if op.outcome == "rai_filtered":
        return {"code": "CONTENT_FILTERED",
                "message": "Video generation was blocked by safety filters "
                           "(raiMediaFilteredCount=1)."}
    return {"code": "GENERATION_FAILED", "message": "Video generation failed (simulated op_error)."}


def _status(op: Operation) -> str:
    if op.is_done():
        return SUCCESSFUL if op.outcome in ("success", "empty") else FAILED
    return "MEDIA_GENERATION_STATUS_PENDING" if op.progress() < 0.2 else \
        "MEDIA_GENERATION_STATUS_ACTIVE"


def history_entries(st: SimState) -> list[dict]:
    """Newest first. See the module docstring for the two groupings."""
    with st.lock:
        ops = [o for o in st.operations.values() if o.dialect == DIALECT]
    ops.sort(key=lambda o: o.created_at, reverse=True)
    per_video = st.config.get("genaipro_history_grouping") != "per_generation"
    rows = []
    for op in ops:
        status = _status(op)
        ready = status == SUCCESSFUL and op.outcome == "success"
        base = {"prompt": op.prompt, "status": status, "created_at": _iso(op.created_at)}
        if per_video:
            for o in op.outputs:
                rows.append({"id": o.file_id, **base, "file_urls": [o.url] if ready else []})
        else:
            rows.append({"id": op.id, **base,
                         "file_urls": [o.url for o in op.outputs] if ready else []})
    return rows


@bp.get("/api/v1/veo/histories")
def histories():
    st = state()
    if (denied := check_auth()) is not None:
        st.record(DIALECT, "histories", None, denied.status_code)
        return denied
    try:
        page = int(request.args.get("page", 1))
        page_size = int(request.args.get("page_size", 20))
    except ValueError:
        st.record(DIALECT, "histories", None, 400)
        return error(400, "page and page_size must be integers")
    if page < 1 or not 1 <= page_size <= 100:
        st.record(DIALECT, "histories", None, 400)
        return error(400, "page must be >= 1 and page_size between 1 and 100")
    rows = history_entries(st)
    start = (page - 1) * page_size
    st.record(DIALECT, "histories", None, 200)
    return jsonify({"data": rows[start:start + page_size], "total": len(rows), "page": page,
                    "page_size": page_size,
                    "total_pages": math.ceil(len(rows) / page_size) if rows else 0})


@bp.get("/media/genaipro/<file_id>.mp4")
def file(file_id: str):
    return media.download(DIALECT, file_id,
                          expired=lambda: error(404, "file not found or expired"),
                          not_found=lambda: error(404, "file not found"))
