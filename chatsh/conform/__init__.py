"""``chatsh conform``: named conformance cases for any server of the protocol."""
