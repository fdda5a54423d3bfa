"""Sending from the CRM: request validation, daily limits (R17) and idempotency (R18)."""
