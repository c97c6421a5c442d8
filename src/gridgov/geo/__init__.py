"""Geography: the region tree, grids, locate index and coordinate systems."""
