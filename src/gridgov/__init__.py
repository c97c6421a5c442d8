"""gridgov: open-source platform for city grid governance (网格化基层社会治理)."""

import os

__version__ = "0.1.0"

# Polars' allocator (jemalloc, read when Polars loads) keeps freed pages for a while by default, so
# a city-scale step held on to about 0.8 GB it no longer used (persons at S = 0.25: peak 2,076 →
# 1,772 MiB with pages given back at once, in the same time). A value set by the operator wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
