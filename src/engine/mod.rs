//! The decision engine: pure, synchronous, no IO.
