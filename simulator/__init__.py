"""The Google simulator: Gmail API v1, Google OAuth 2.0 and Secret Manager on one local server.

`python -m simulator --config sim.json --port 8089` serves it; `create_app`
builds it in-process (tests). See docs/SIMULATOR.md.
"""
