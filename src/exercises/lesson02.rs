//! The exercises of lesson 02 (see `notebooks/` and `notebooks/solutions/`).
