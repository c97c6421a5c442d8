"""Spatial hot spots over grids: Getis-Ord Gi* with analytic z-scores (PySAL esda) on k-nearest
neighbour weights (libpysal), and the Benjamini–Hochberg false-discovery rate. Pure: arrays in,
decisions out."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammainc
from scipy.stats import norm

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class HotSpots:
    z: FloatArray  # Gi* z-score per grid (analytic, under normality)
    p: FloatArray  # one-sided p-value for a hot spot (z > 0)
    significant: NDArray[np.bool_]  # BH-significant hot spots at the chosen FDR
    neighbours: list[list[int]]  # each grid's neighbours (not itself)


def knn_neighbours(lon: FloatArray, lat: FloatArray, k: int) -> list[list[int]]:
    """Each grid's k nearest grids by centroid (longitude scaled by cos(latitude))."""
    from libpysal.weights import KNN

    scale = np.cos(np.radians(float(np.mean(lat)))) if len(lat) else 1.0
    pts = np.column_stack([np.asarray(lon) * scale, np.asarray(lat)])
    k = max(1, min(k, len(pts) - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libpysal warns about islands and disconnected parts
        w = KNN.from_array(pts, k=k)
    return [sorted(int(j) for j in w.neighbors[i]) for i in range(len(pts))]


def gi_star(values: FloatArray, neighbours: list[list[int]]) -> FloatArray:
    """Gi* z-scores (binary weights, the grid itself included) by esda.G_Local."""
    import esda
    from libpysal.weights import W

    w = W({i: nb for i, nb in enumerate(neighbours)}, silence_warnings=True)
    x = np.asarray(values, dtype=float)
    if float(np.std(x)) == 0.0:
        return np.zeros(len(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = esda.G_Local(x, w, transform="B", permutations=0, star=True)
    return np.asarray(g.Zs, dtype=np.float64)


def gi_star_textbook(values: FloatArray, neighbours: list[list[int]]) -> FloatArray:
    """Gi* by the formula of Getis & Ord (1995) / Ord & Getis (1995), for checking esda:
    z_i = (Σ_j w_ij x_j − x̄ W_i) / (s √((n S1_i − W_i²)/(n − 1))), w binary with w_ii = 1."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = x.mean()
    s = np.sqrt((x**2).mean() - mean**2)
    z = np.zeros(n)
    for i, nb in enumerate(neighbours):
        idx = [i, *nb]
        wi = float(len(idx))
        num = x[idx].sum() - mean * wi
        den = s * np.sqrt((n * wi - wi**2) / (n - 1))
        z[i] = num / den if den > 0 else 0.0
    return z


def benjamini_hochberg(p: FloatArray, q: float) -> NDArray[np.bool_]:
    """Which hypotheses are rejected at false-discovery rate q (Benjamini & Hochberg 1995)."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p)
    passed = p[order] <= q * np.arange(1, m + 1) / m
    out = np.zeros(m, dtype=bool)
    if passed.any():
        last = int(np.max(np.nonzero(passed)[0]))
        out[order[: last + 1]] = True
    return out


def hot_spots(values: FloatArray, neighbours: list[list[int]], *, fdr: float) -> HotSpots:
    z = gi_star(values, neighbours)
    p = np.asarray(norm.sf(z), dtype=np.float64)
    return HotSpots(z, p, benjamini_hochberg(p, fdr) & (z > 0), neighbours)


def poisson_tail(count: FloatArray, mean: FloatArray) -> FloatArray:
    """P(Y ≥ count) for Y ~ Poisson(mean) (1 for count ≤ 0)."""
    c = np.asarray(count, dtype=float)
    m = np.maximum(np.asarray(mean, dtype=float), 1e-12)
    out = np.ones(np.broadcast(c, m).shape)
    pos = c > 0
    out[pos] = gammainc(c[pos], np.broadcast_to(m, out.shape)[pos])
    return out
