"""Small shared pieces: errors, clock."""
