//! The exercises of lesson 06 (see `notebooks/` and `notebooks/solutions/`).
