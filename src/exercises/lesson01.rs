//! The exercises of lesson 01 (see `notebooks/` and `notebooks/solutions/`).
