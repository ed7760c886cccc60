//! The loops that move work forward from the journal: `evaluate` runs the
//! rules over durable, unevaluated events and writes planned actions to the
//! outbox; `deliver` sends due actions through their connectors, with
//! `retry` deciding what a failed attempt leads to; `reevaluate` runs
//! stored events through today's rules as a dry run and reports what would
//! change; `prune` deletes what retention lets go.

pub mod deliver;
pub mod evaluate;
pub mod prune;
pub mod reevaluate;
pub mod retry;
