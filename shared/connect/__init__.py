"""Connecting a mailbox: the OAuth flow and its state, connections, status, resync and Auto BCC routes (R1-R5, R16b)."""
