"""Approval routing: requests per group and chain step, decisions, delegation and escalation."""
