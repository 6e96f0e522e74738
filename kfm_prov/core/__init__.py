"""Foundation: no knowledge of a lake's layout; every other layer may import it."""
