//! The exercises of lesson 04 (see `notebooks/` and `notebooks/solutions/`).
