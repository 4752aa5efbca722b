"""Storage operations per resource; routes stay thin and call these."""
