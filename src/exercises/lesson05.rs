//! The exercises of lesson 05 (see `notebooks/` and `notebooks/solutions/`).
