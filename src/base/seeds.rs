//! Named seed streams: every experiment derives the seeds of its separate random streams here,
//! from one user seed, so no two streams share a seed by accident and a reader finds every offset
//! in one place.
