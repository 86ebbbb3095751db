//! The exercises of lesson 10 (see `notebooks/` and `notebooks/solutions/`).
