//! The exercises of lesson 07 (see `notebooks/` and `notebooks/solutions/`).
