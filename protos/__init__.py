"""The wire contract (package vau.v1). `.proto` sources sit beside their generated `_pb2` modules;
`make protos` regenerates them, and a test fails when they drift. Only the codec modules
(`vau.edge.uplink.codec`, `vau.cloud.codec`) import these types."""
