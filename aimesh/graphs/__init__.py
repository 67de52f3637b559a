"""The coordinator graph: delegation to specialists, loop guards, grounded answers."""
