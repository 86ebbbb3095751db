//! The exercises of lesson 09 (see `notebooks/` and `notebooks/solutions/`).
