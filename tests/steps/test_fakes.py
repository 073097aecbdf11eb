"""The fakes keep the real clients' interfaces and the semantics the steps rely on: a fake
that drifted from the real thing would let the step tests pass against a world that is not."""
from __future__ import annotations

import inspect
import io
from datetime import timedelta

import pytest
from google.api_core import exceptions as gexc
from google.cloud import storage

from veorelay.core.clock import utcnow
from veorelay.core.errors import TransientError
from veorelay.core.job import JobStatus, TransitionRefused
from veorelay.gcp.store import JobStore
from veorelay.gcp.tasks import TaskRequest, TaskScheduler
from veorelay.providers.base import Provider, StreamingProvider

from .fake_providers import FakeProvider, FakeStreamingProvider
from .fakes import FakeBucket, FakeScheduler, FakeStore, make_settings


def parameters(func) -> list[str]:
    return [p.name for p in inspect.signature(func).parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def public_methods(cls) -> set[str]:
    return {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}


def test_fake_store_has_every_method_of_the_job_store_with_the_same_parameters():
    for name in public_methods(JobStore):
        assert parameters(getattr(FakeStore, name)) == parameters(getattr(JobStore, name)), name


def test_fake_scheduler_enqueues_like_the_task_scheduler():
    assert parameters(FakeScheduler.enqueue) == parameters(TaskScheduler.enqueue)


@pytest.mark.parametrize("fake, protocol", [(FakeProvider, Provider), (FakeStreamingProvider, StreamingProvider)])
def test_fake_providers_implement_the_provider_protocols(fake, protocol):
    for name in public_methods(protocol):
        assert parameters(getattr(fake, name)) == parameters(getattr(protocol, name)), name


@pytest.mark.parametrize("method", ["upload_from_file", "upload_from_string", "download_as_bytes", "open", "exists",
                                    "delete", "reload", "patch", "rewrite", "generate_signed_url"])
def test_fake_blob_takes_only_arguments_the_real_blob_takes(method):
    from .fakes import FakeBlob

    real = set(parameters(getattr(storage.Blob, method)))
    assert set(parameters(getattr(FakeBlob, method))) <= real


def test_fake_bucket_takes_only_arguments_the_real_bucket_takes():
    assert set(parameters(FakeBucket.blob)[2:]) <= set(parameters(storage.Bucket.blob))
    assert set(parameters(FakeBucket.get_blob)[2:]) <= set(parameters(storage.Bucket.get_blob))


# ---------------------------------------------------------------------------- store semantics


def new_job(job_id: str = "a" * 32, status: str = "accepted") -> dict:
    now = utcnow()
    return {"id": job_id, "status": status, "updated_at": now, "created_at": now, "timestamps": {status: now},
            "deadline_at": now + timedelta(hours=1), "progress": {"percent": 0, "stage": status}}


def test_store_refuses_a_second_job_with_the_same_id_and_a_missing_job_is_a_key_error():
    store = FakeStore()
    store.create(new_job())
    with pytest.raises(gexc.Conflict):
        store.create(new_job())
    with pytest.raises(KeyError):
        store.transition("b" * 32, JobStatus.RUNNING)
    with pytest.raises(KeyError):
        store.append("b" * 32, "deliveries", {"x": 1}, limit=10)
    assert store.get("b" * 32) is None and store.claim("b" * 32, "submit_claim", JobStatus.ACCEPTED, 60) is False


def test_store_hands_out_copies_and_keeps_what_firestore_keeps():
    store = FakeStore()
    store.create(new_job())
    job = store.get("a" * 32)
    job["status"] = "succeeded"
    job["progress"]["percent"] = 99
    assert store.job("a" * 32)["status"] == "accepted" and store.job("a" * 32)["progress"]["percent"] == 0
    store.update("a" * 32, {JobStatus.ACCEPTED}, {"handle": {"ids": (1, 2)}})
    assert store.job("a" * 32)["handle"] == {"ids": [1, 2]}  # Firestore has arrays, not tuples
    with pytest.raises(TypeError):
        store.update("a" * 32, {JobStatus.ACCEPTED}, {"handle": object()})


def test_store_transitions_check_the_state_machine_merge_dotted_fields_and_expire_terminal_jobs():
    store = FakeStore()
    store.create(new_job())
    with pytest.raises(TransitionRefused):
        store.transition("a" * 32, JobStatus.DOWNLOADING)
    with pytest.raises(TransitionRefused):
        store.transition("a" * 32, JobStatus.RUNNING, from_states={JobStatus.DOWNLOADING})
    running = store.transition("a" * 32, JobStatus.RUNNING, {"progress.stage": "running"})
    assert set(running["timestamps"]) == {"accepted", "running"} and running["progress"] == {"percent": 0, "stage": "running"}
    assert "expire_at" not in running
    failed = store.transition("a" * 32, JobStatus.FAILED)
    assert failed["expire_at"] > utcnow() + timedelta(days=29)
    with pytest.raises(TransitionRefused):
        store.transition("a" * 32, JobStatus.CANCELLED)
    with pytest.raises(TransitionRefused):
        store.update("a" * 32, {JobStatus.RUNNING}, {"progress": {}})


def test_store_claims_are_leases_and_appends_are_array_unions():
    store = FakeStore()
    store.create(new_job())
    assert store.claim("a" * 32, "submit_claim", JobStatus.ACCEPTED, 60) is True
    assert store.claim("a" * 32, "submit_claim", JobStatus.ACCEPTED, 60) is False
    store.edit("a" * 32, submit_claim={"at": utcnow() - timedelta(seconds=61)})
    assert store.claim("a" * 32, "submit_claim", JobStatus.ACCEPTED, 60) is True
    assert store.append("a" * 32, "deliveries", {"n": 1}, limit=3) is True
    store.append("a" * 32, "deliveries", {"n": 1}, limit=3)
    store.append("a" * 32, "deliveries", {"n": 2}, limit=3)
    assert store.job("a" * 32)["deliveries"] == [{"n": 1}, {"n": 2}]
    writes = len(store.writes)
    assert store.append("a" * 32, "deliveries", {"n": 3}, limit=2) is False  # full: nothing written
    assert store.job("a" * 32)["deliveries"] == [{"n": 1}, {"n": 2}] and len(store.writes) == writes


def test_store_updates_can_require_fields_to_be_unchanged():
    store = FakeStore()
    store.create(new_job())
    store.update("a" * 32, {JobStatus.ACCEPTED}, {"poll_chain": "x"}, unchanged={"poll_chain": None, "sweep_gen": None})
    with pytest.raises(TransitionRefused):
        store.update("a" * 32, {JobStatus.ACCEPTED}, {"poll_chain": "y"}, unchanged={"poll_chain": None})
    assert store.job("a" * 32)["poll_chain"] == "x"


def test_store_queries_old_jobs_oldest_first_and_restarts_only_untouched_ones():
    store = FakeStore()
    for i, age in enumerate((30, 90, 60)):
        job = new_job(str(i) * 32)
        job["updated_at"] = utcnow() - timedelta(seconds=age)
        store.create(job)
    old = store.older_than(JobStatus.ACCEPTED, "updated_at", utcnow() - timedelta(seconds=45), 10)
    assert [j["id"] for j in old] == ["1" * 32, "2" * 32]
    assert store.restart_chain("1" * 32, JobStatus.ACCEPTED, utcnow() - timedelta(seconds=45))["sweep_gen"] == 1
    with pytest.raises(TransitionRefused):  # written just now by the restart itself
        store.restart_chain("1" * 32, JobStatus.ACCEPTED, utcnow() - timedelta(seconds=45))


# ---------------------------------------------------------------------------- tasks semantics


def test_scheduler_keeps_one_task_per_name_and_validates_like_cloud_tasks():
    tasks = FakeScheduler(make_settings(), queues=["veo-poll"])
    req = TaskRequest(queue="veo-poll", target="poll_job", name="j-poll-1", payload={"job_id": "j"}, delay_s=5)
    assert tasks.enqueue(req) is True and tasks.enqueue(req) is False
    assert tasks.names() == ["j-poll-1"] and tasks.refused == ["j-poll-1"] and tasks.pending[0].due_s == 5
    with pytest.raises(ValueError):
        tasks.enqueue(TaskRequest(queue="veo-poll", target="poll_job", name="j.poll", payload={}))
    with pytest.raises(gexc.NotFound):
        tasks.enqueue(TaskRequest(queue="veo-nope", target="poll_job", name="j-x", payload={}))
    with pytest.raises(gexc.InvalidArgument):
        tasks.enqueue(TaskRequest(queue="veo-poll", target="poll_job", name="j-y", payload={}, dispatch_deadline_s=3600))
    tasks.faults.add("enqueue", TransientError("internal", "queue unavailable"))
    with pytest.raises(TransientError):
        tasks.enqueue(TaskRequest(queue="veo-poll", target="poll_job", name="j-z", payload={}))
    assert tasks.enqueue(TaskRequest(queue="veo-poll", target="poll_job", name="j-z", payload={})) is True


# ---------------------------------------------------------------------------- storage semantics


class Chunks(io.RawIOBase):
    """A stream that raises after `fail_after` bytes, and remembers each read's size."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        self.data, self.pos, self.fail_after, self.reads = data, 0, fail_after, []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise OSError("download broke")
        end = len(self.data) if size < 0 else self.pos + size
        piece, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return piece

    def tell(self) -> int:
        return self.pos


CHUNK = 256 * 1024


def test_an_upload_of_unknown_size_reads_one_chunk_at_a_time_and_creates_the_object_with_the_last():
    bucket = FakeBucket("b")
    stream = Chunks(b"x" * (CHUNK * 2 + 10))
    bucket.blob("v", chunk_size=CHUNK).upload_from_file(stream, content_type="video/mp4", if_generation_match=0)
    assert stream.reads == [CHUNK, CHUNK, CHUNK] and bucket.data("v") == b"x" * (CHUNK * 2 + 10)
    broken = Chunks(b"y" * (CHUNK * 3), fail_after=CHUNK * 2)
    with pytest.raises(OSError):
        bucket.blob("w", chunk_size=CHUNK).upload_from_file(broken, if_generation_match=0)
    assert bucket.names() == ["v"]  # nothing for the upload that failed before its last chunk


def test_a_known_size_up_to_8_mib_is_one_read_and_a_short_stream_creates_nothing():
    bucket = FakeBucket("b")
    stream = Chunks(b"z" * 1000)
    bucket.blob("v", chunk_size=CHUNK).upload_from_file(stream, size=1000)
    assert stream.reads == [1000]
    with pytest.raises(ValueError):
        bucket.blob("w", chunk_size=CHUNK).upload_from_file(Chunks(b"z" * 999), size=1000)
    assert bucket.names() == ["v"]


def test_create_only_writes_and_missing_objects_answer_like_gcs():
    bucket = FakeBucket("b")
    bucket.blob("v").upload_from_string(b"one", if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("v").upload_from_string(b"two", if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("v", chunk_size=CHUNK).upload_from_file(Chunks(b"two" * CHUNK), if_generation_match=0)
    assert bucket.data("v") == b"one"
    with pytest.raises(gexc.NotFound):
        bucket.blob("missing").delete()
    with pytest.raises(gexc.NotFound):
        bucket.blob("missing").download_as_bytes()
    with pytest.raises(ValueError):
        bucket.blob("v", chunk_size=1000)
    old = bucket.get_blob("v").generation
    bucket.blob("v").delete()
    bucket.blob("v").upload_from_string(b"three")
    with pytest.raises(gexc.NotFound):  # that generation is gone
        bucket.blob("v", generation=old).download_as_bytes()
