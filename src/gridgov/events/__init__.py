"""Events: the closed loop of problems found in a grid (catalog, routing, workflow, deadlines, timeline)."""
