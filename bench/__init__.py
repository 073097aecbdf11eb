"""`make bench`: veo-relay measured side by side with its baselines (see bench/run.py)."""
