"""Demo and benchmark data: `flask demo seed` and `flask demo tree`."""
