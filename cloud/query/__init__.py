"""The vau.v1.Query gRPC service: read the event store, watch it, ask the explainer."""
