"""A bucket consumer: a Cloud Function that runs once per finished veo-relay job.

veo-relay writes every video of a job first (each verified, and checked by Cloud Storage
against the CRC32C of the bytes sent) and `<prefix>/<job id>/job.json` last. So a consumer that
waits for job.json finds every video already in place, and never sees a partial one. Each output
in job.json records the `crc32c` and `md5` Cloud Storage reports for its object.

Deploy (the bucket is veo-relay's; the service account needs roles/storage.objectViewer on it):

    gcloud functions deploy on-video-ready --gen2 --runtime=python312 --region=REGION \
        --source=docs/examples/bucket_consumer --entry-point=on_job_json \
        --trigger-event-filters=type=google.cloud.storage.object.v1.finalized \
        --trigger-event-filters=bucket=BUCKET \
        --service-account=CONSUMER_SA@PROJECT.iam.gserviceaccount.com
"""
import json
import os

import functions_framework
from google.cloud import storage

OUTPUT_PREFIX = os.environ.get("VEO_OUTPUT_PREFIX", "videos")  # veo-relay's VEO_OUTPUT_PREFIX


@functions_framework.cloud_event
def on_job_json(event) -> None:
    name, bucket_name = event.data["name"], event.data["bucket"]
    # Every object in the bucket fires this event; only job.json means "a job is complete".
    if not (name.startswith(OUTPUT_PREFIX + "/") and name.endswith("/job.json")):
        return
    bucket = storage.Client().bucket(bucket_name)
    job = json.loads(bucket.blob(name, generation=int(event.data["generation"])).download_as_bytes())
    for output in job["outputs"]:
        video = bucket.get_blob(output["name"])
        # The same checksums as job.json records: this object is the video the job stored (not one
        # written over it since). Its metadata says which job, provider, model and prompt it came from.
        if video is None or (video.crc32c, video.md5_hash) != (output["crc32c"], output.get("md5")):
            raise RuntimeError(f"{output['uri']} is not the video job.json describes")  # retried by Eventarc
        handle_video(job, video)


def handle_video(job: dict, video: storage.Blob) -> None:
    """Replace with your own work: transcode, publish, copy elsewhere, notify someone..."""
    print(json.dumps({
        "job_id": video.metadata["job_id"], "video": f"gs://{video.bucket.name}/{video.name}",
        "size": video.size, "content_type": video.content_type,
        "crc32c": video.crc32c, "md5": video.md5_hash,
        "provider": video.metadata["provider"], "model": video.metadata["model"],
        "prompt_sha256": video.metadata["prompt_sha256"], "client_metadata": job.get("metadata"),
    }))
