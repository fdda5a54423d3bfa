"""Auto BCC: copies in, each logged for the user its address names (R16, R16b, R21)."""
