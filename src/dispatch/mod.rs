//! The loops that move work forward from the journal: `evaluate` runs the
//! rules over durable, unevaluated events and writes planned actions to the
//! outbox; `deliver` sends due actions through their connectors, with
//! `retry` deciding what a failed attempt leads to.

pub mod deliver;
pub mod evaluate;
pub mod retry;
