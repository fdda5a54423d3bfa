"""Cloud Storage for the whole mail (R32): object names, idempotent streamed writes, reads.

`names` is pure; `objects` holds the only Cloud Storage client (imported on
first use, so a function that never touches storage never loads it);
`bodies` keeps a message's bodies and attachments and says where on the
document; `synced` is the sync's hook (attachment bytes from Gmail).
"""
