"""gRPC clients of the components: each translates one service's protobuf to and from the domain's
messages, so a component in another process looks like a port (celeris.assembly.ports)."""
