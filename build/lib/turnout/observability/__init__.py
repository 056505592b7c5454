"""Metrics, usage and cost, recent activity, request logs and the status page."""
