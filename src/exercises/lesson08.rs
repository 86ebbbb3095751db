//! The exercises of lesson 08 (see `notebooks/` and `notebooks/solutions/`).
