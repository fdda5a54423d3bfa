"""Connecting a mailbox: the OAuth flow and its state, connections and mailbox reads (R1-R5)."""
