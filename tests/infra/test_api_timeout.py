"""The api function's request timeout (infra/main.tf) leaves room for what its requests may
hold: an event stream up to Settings.events_max_s, ended cleanly before the platform cuts it, and
a `Prefer: wait` of up to 60 s after a multipart body took its whole time to arrive."""

from __future__ import annotations

from infra_helpers import Terraform

from veorelay.config import Settings
from veorelay.steps.watch import MAX_WAIT_S

# Firestore calls before an answer (read, listener start) and the last message's write.
MARGIN_S = 20


def defaults() -> Settings:
    return Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b"})


def test_an_event_stream_ends_before_the_api_function_times_out(tf: Terraform):
    timeout = tf.locals["function_catalog"]["api"]["timeout"]
    assert defaults().events_max_s + MARGIN_S <= timeout


def test_a_waited_request_is_answered_before_the_api_function_times_out(tf: Terraform):
    timeout = tf.locals["function_catalog"]["api"]["timeout"]
    multipart_body_s = 3 * defaults().body_timeout_s
    assert multipart_body_s + MAX_WAIT_S + MARGIN_S <= timeout
