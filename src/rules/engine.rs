//! The one Rhai engine builder, used by production, `check`, `route`,
//! `test` and the test suite alike. Limits are always on; the sandbox has
//! no module imports (the `no_module` feature), no `eval`, no `sleep`, and
//! `print`/`debug` go to the log under the rule's name.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Position};

use crate::config::RulesConfig;

thread_local! {
    /// When the rule running on this thread must stop (wall-clock budget).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with a wall-clock budget for the script it evaluates.
pub fn with_budget<T>(budget: Duration, f: impl FnOnce() -> T) -> T {
    DEADLINE.with(|d| d.set(Some(Instant::now() + budget)));
    let out = f();
    DEADLINE.with(|d| d.set(None));
    out
}

/// The token a script is terminated with when its time is up.
pub const TIME_BUDGET_TOKEN: &str = "time budget exceeded";

/// Builds the sandboxed engine with the configured limits and the script API.
pub fn build(limits: &RulesConfig) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_variables(1_000)
        .set_max_functions(1_000);
    engine.disable_symbol("eval");
    // Rhai's own `sleep` blocks the thread past any deadline (and panics on
    // huge floats): replace both overloads with an error.
    engine.register_fn("sleep", |_: i64| -> Result<(), Box<EvalAltResult>> {
        Err(no_sleep())
    });
    engine.register_fn("sleep", |_: f64| -> Result<(), Box<EvalAltResult>> {
        Err(no_sleep())
    });
    engine.on_progress(|ops| {
        // Checking the clock every operation would cost more than the script.
        if ops % 512 != 0 {
            return None;
        }
        let late = DEADLINE
            .with(|d| d.get())
            .is_some_and(|d| Instant::now() > d);
        late.then(|| Dynamic::from(TIME_BUDGET_TOKEN))
    });
    engine.on_print(|s| tracing::info!(rule = %super::api::current_rule(), "{s}"));
    engine.on_debug(|s, src, pos| {
        tracing::debug!(rule = %super::api::current_rule(), source = src.unwrap_or(""), %pos, "{s}")
    });
    super::api::register(&mut engine);
    engine
}

fn no_sleep() -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(
        "sleep() is not available in rules: a rule decides, the dispatcher waits".into(),
        Position::NONE,
    )
    .into()
}
