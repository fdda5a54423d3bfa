"""HTTP answers and request validation shared by the HTTP functions."""
