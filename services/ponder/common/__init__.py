"""Config models, errors, telemetry, gRPC helpers and stores shared by every service."""
