//! The loops that move work forward from the journal. `evaluate` runs the
//! rules over durable, unevaluated events and writes their planned actions
//! to the outbox; delivery of those actions comes next.

pub mod evaluate;
