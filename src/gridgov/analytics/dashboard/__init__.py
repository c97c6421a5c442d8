"""Dashboards for every level: figures from the rollups, charts, map, tables and XLSX."""
