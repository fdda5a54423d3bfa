"""The package every gmail-crm-sync function shares: data model, Google access, rules."""
