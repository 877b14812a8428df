//! What travels: the records (tests, signals, reports) and their encodings, the errors, the
//! duration grammar, W3C trace context, Faust's record format, the limits a reader holds a
//! record to, and the signatures of test context. Every other tier builds on this one, and it
//! builds on none of them.

pub mod codec;
pub mod duration;
pub mod error;
pub mod faust;
pub mod limits;
pub mod model;
pub mod signing;
pub mod trace;
