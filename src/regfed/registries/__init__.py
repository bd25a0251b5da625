"""Registry adapters: each maps one registry's schema onto the domain model."""
