"""Attachments of logged messages (R20): stored copies' bytes and fetching them for the CRM."""
