"""Admin API under /_sim: health, config, call log, operations, reset, and the
no-auth /_sim/blob/<file> route that redirects land on."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from . import media
from .common import DEFAULT_CONFIG, json_body, json_error, state

bp = Blueprint("sim_admin", __name__)


@bp.get("/_sim/health")
def health():
    return jsonify({"ok": True, "time": time.time(), "sample_bytes": len(media.SAMPLE)})


@bp.get("/_sim/config")
def get_config():
    return jsonify(state().config)


@bp.post("/_sim/config")
def set_config():
    """Merge known keys into the global config; unknown keys are a 400 so a typo
    in a test does not silently do nothing."""
    body = json_body()
    if body is None:
        return json_error(400, {"error": "body must be a JSON object"})
    unknown = sorted(set(body) - set(DEFAULT_CONFIG))
    if unknown:
        return json_error(400, {"error": f"unknown config keys: {unknown}",
                                "known": sorted(DEFAULT_CONFIG)})
    st = state()
    with st.lock:
        st.config.update(body)
        return jsonify(st.config)


@bp.post("/_sim/reset")
def reset():
    state().reset()
    return jsonify({"ok": True})


@bp.get("/_sim/calls")
def calls():
    """Call log, oldest first; filters: dialect, kind, op_id."""
    wanted = {k: request.args[k] for k in ("dialect", "kind", "op_id") if request.args.get(k)}
    rows = [c for c in list(state().calls) if all(c.get(k) == v for k, v in wanted.items())]
    return jsonify(rows)


@bp.get("/_sim/operations")
def operations():
    """Every operation with the size and sha256 of each output, i.e. of exactly the
    bytes a full, fault-free download serves (hashed by streaming, then cached).
    ?dialect= and ?id= filter; ?hash=0 skips hashing (fast listing)."""
    st = state()
    with st.lock:
        ops = list(st.operations.values())
    dialect, op_id = request.args.get("dialect"), request.args.get("id")
    want_hash = request.args.get("hash", "1") != "0"
    rows = []
    for op in ops:
        if (dialect and op.dialect != dialect) or (op_id and op.id != op_id):
            continue
        outputs = []
        for out in op.outputs:
            row = {"index": out.index, "url": out.url, "download_url": out.download_url,
                   "file_id": out.file_id}
            if want_hash:
                row["size"], row["sha256"] = media.sha256_of(op, out)
            else:
                row["size"] = media.video_for(op, out).total
            outputs.append(row)
        rows.append({
            "id": op.id, "dialect": op.dialect, "prompt": op.prompt, "model": op.model,
            "created_at": op.created_at, "duration": op.duration, "done": op.is_done(),
            "outcome": op.outcome, "directives": op.directives.items,
            "polls": op.poll_count, "outputs": outputs,
            **{k: v for k, v in op.extra.items() if k in ("gcs_uris", "names")},
        })
    return jsonify(rows)


@bp.get("/_sim/blob/<file_id>")
def blob(file_id: str):
    """Where `redirect` (and the Gemini API's normal download) sends clients --
    like a signed googleusercontent URL: no auth, body-level faults still apply."""
    st = state()
    hit = st.by_file(file_id)
    if not hit or not hit[0].is_done():
        st.record(hit[0].dialect if hit else "sim", "blob", hit[0] if hit else None, 404)
        return json_error(404, {"error": "not found"})
    resp = media.serve_video(*hit)
    st.record(hit[0].dialect, "blob", hit[0], resp.status_code)
    return resp
