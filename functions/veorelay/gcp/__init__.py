"""Google Cloud below the steps: the Firestore job store, Cloud Tasks, the GCS sink, signed URLs, learned poll statistics, logs."""
