"""The sync: gmail_push invocations, the pass, lease, matching rules, updates, sweeps, renewals (R2, R5, R7-R22)."""
