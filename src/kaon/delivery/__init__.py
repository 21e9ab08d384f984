"""Delivery: per-output queues, workers that transform, send and classify, retries, dead letters, replay."""
