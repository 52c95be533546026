"""The stream: the message schema (msgspec Structs), topics and bounded msgpack encoding, the PUB and control
sockets with the proxy and log forwarding, CurveZMQ, and the typed subscriber users import."""
