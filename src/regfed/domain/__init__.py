"""The pure core: people, registry events, the eligibility policy. No I/O, no gRPC."""
