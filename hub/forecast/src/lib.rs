//! Demand forecasting and replenishment for the hub, pure: per-SKU daily forecasts from the
//! site's own history (weekday cycle, damped trend, intermittent demand, stock-out days as
//! censored demand, central's demand signals as multipliers), order-up-to plans with safety
//! stock capped by shelf life, a seeded history generator, a what-if site simulator, forecast
//! quality metrics, and the CSV bridge to a Python ETS baseline.
//!
//! Invariant: no I/O, no clock, no global randomness, no SQLite/MQTT/JSON. Dates come in as
//! arguments, random numbers from a caller-seeded generator.

pub mod bench_csv;
pub mod eval;
pub mod generator;
pub mod model;
pub mod replenish;
pub mod signals;
pub mod simulate;
pub mod stats;

pub use bench_csv::{CsvError, history_csv, parse_forecast_csv};
pub use eval::{
    Accuracy, EvalCut, EvalOptions, EvalReport, ExternalForecast, ScoreError, evaluation_cuts,
    mase, rolling_origin, score_external, seasonal_naive, wape,
};
pub use generator::{GeneratorConfig, SiteHistory, SkuHistory, SkuProfile, generate};
pub use model::{
    DailyObservation, FallbackReason, FitStats, Forecast, ForecastConfig, ForecastDay, Method,
    SkuContext, forecast_sku,
};
pub use replenish::{
    Cap, PlanError, ReplenishmentInput, ReplenishmentPlan, days_of_cover, plan_replenishment,
};
pub use signals::{
    DemandSignal, MAX_MULTIPLIER, SignalError, SignalKind, SignalScope, SkuSignals,
    validate_signals,
};
pub use simulate::{
    ConfigError, CoverTiers, Policy, SimConfig, SimFigures, SimReport, SkuLedger, Tier,
    TrailingState, simulate, trailing_step,
};
