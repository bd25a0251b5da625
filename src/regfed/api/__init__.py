"""The gRPC transport: servicers, request validation, conversion, error mapping."""
