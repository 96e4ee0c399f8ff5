"""Running the protocol: prepare data, encode, train cells, write records; sweeps, reproduce."""
