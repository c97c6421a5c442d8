"""gridgov: open-source platform for city grid governance (网格化基层社会治理)."""

__version__ = "0.1.0"
