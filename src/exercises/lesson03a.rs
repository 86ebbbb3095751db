//! The exercises of lesson 03a (see `notebooks/` and `notebooks/solutions/`).
