"""The CRM's log in Firestore and the sync's own records, with every path, id and document reference.

Conversations and their messages, thread maps, contacts and the contact index,
users, settings and the R21 blocklist, skipped messages (R22), mailboxes,
links and tokens. The sync, send, Auto BCC and attachments all write the log
through this package; it depends on `core` alone.
"""
