//! The hub core.
