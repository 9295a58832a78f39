"""Webhook notifications: an outbox written with the change, posted later by the worker."""
