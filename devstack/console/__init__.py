"""The developer console: one local web page over the whole stack (`make up` starts it).

It shows what the sync stored (mailboxes, CRM accounts, users, contacts,
conversations and their messages), the live `crm-events` stream, and drives the
simulator (mail from a contact, the rep in Gmail, revoked tokens, expired
watches, faults) and the functions (connect through the real consent page,
attachments) as a CRM developer would. A local-stack tool, never deployed.
"""
