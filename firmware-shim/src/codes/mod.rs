//! Barcode content: GS1 element strings, GS1 Digital Link URIs and trace-code classes.
//!
//! Input is whatever a scanner sent, so every parser here is total and names its rejection
//! reason (each error type implements `Display`). Parsing borrows from the input or from a
//! caller-provided scratch buffer and fills fixed-capacity arrays: no allocation, no clock (the
//! current year for GS1 date windows is an argument), no I/O.

pub mod check;
pub mod digital_link;
pub mod gs1;
pub mod trace;
