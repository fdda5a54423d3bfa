"""The `messages` function's operations (0.3): whole bodies (R32) and the CRM's changes made in Gmail (R33).

`errors` names the refusals, `body` reads a message whole from storage,
`targets` finds every connected mailbox a message came through (and its Gmail
id there), `modify` applies the CRM's read/starred/trashed in each of them.
"""
