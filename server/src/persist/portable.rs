//! Portable export/import of a backend's records (`shoal-server export|import`).
