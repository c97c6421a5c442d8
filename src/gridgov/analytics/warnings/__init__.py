"""Early warning: rises per unit × category, spatial hot spots, repeated disputes, overdue visits."""
