"""Statistics, assessment and early warning."""
