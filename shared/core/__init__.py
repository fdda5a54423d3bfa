"""Configuration, clients, logging, data model, secrets, encryption and events: what every function needs."""
