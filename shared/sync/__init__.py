"""The sync: engine, per-mailbox lease, matching rules, contacts, threads and conversations (R2, R7-R14)."""
