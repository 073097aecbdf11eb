"""What decodes the outside world: the public API, the task edge, the scheduler edge, bucket request objects, body parsing, auth."""
