"""veo-relay: Google Veo video generation as a durable, serverless job pipeline."""
