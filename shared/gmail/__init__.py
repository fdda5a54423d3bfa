"""Gmail access: the service, history and message fetches, credentials, errors, MIME parsing and building."""
