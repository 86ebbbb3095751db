//! The exercises of lesson 03 (see `notebooks/` and `notebooks/solutions/`).
