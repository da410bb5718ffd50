"""The element wire protocol, shared by provgit's drivers and the simulator.

- `protocol`: the values both ends exchange, the element's answers as
  exceptions, and the `Driver` interface;
- `codec`: the element API v1 on the wire (JSON, status codes, error bodies);
- `sensitive`: splitting `{"$sensitive": ...}` objects from their plaintexts.

It sits below both: a driver and the simulator import it, never each other
(the embedded driver's in-process store is the one documented exception; see
the import contracts in pyproject.toml).
"""
