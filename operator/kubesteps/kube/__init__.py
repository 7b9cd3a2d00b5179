"""Talking to the Kubernetes API: the client, its retry policy, status writes, events."""
