"""regfed: signed COVID-19 certificates from the federated city and federal registries."""

__version__ = "0.1.0"
