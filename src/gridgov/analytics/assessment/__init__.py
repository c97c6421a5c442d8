"""Assessment (考核): indicators and weights from a config file, scores per worker and unit."""
