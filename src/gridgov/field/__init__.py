"""The grid worker's field app: visits, patrols, check tasks on site, offline sync (`/m/`)."""
