//! The hub daemon library.
