"""Configuration, clients, logging, data model, paths, secrets, encryption and events: what every function needs."""
