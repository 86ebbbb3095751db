//! The exercises of lesson 03b (see `notebooks/` and `notebooks/solutions/`).
