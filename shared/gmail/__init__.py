"""Gmail access: the service, credentials, errors, history and message fetches, profile and watch, MIME."""
