"""The synthetic demo city: Ningbo's real code tree, generated polygons, one account per level and role."""
