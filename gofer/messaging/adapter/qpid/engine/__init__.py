"""gofer's AMQP 0-10 client protocol engine: standard library only, generated from the spec.

- :mod:`.spec010`: the protocol's types, structs, controls and commands,
  generated from the specification by ``tools/gen010.py`` (never edit it);
- :mod:`.base`: what the generated classes build on;
- :mod:`.codec`: values, structs, controls and commands to and from octets;
- :mod:`.framing`: the protocol header, frames and their assembly;
- :mod:`.transport`: the socket, with TLS done in memory;
- :mod:`.connection`: negotiation, the I/O thread, heartbeats;
- :mod:`.session`: command numbering, completion, results, deliveries;
- :mod:`.message`: messages and their properties;
- :mod:`.errors`: the broker's error codes in gofer's error tree.
"""
