"""Auto BCC: addresses and copies (R16)."""
