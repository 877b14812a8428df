//! The operator's surface of a worker (feature `ops`): the status page and JSON API, Prometheus
//! metrics, and suite alerts to a webhook. (The OpenTelemetry export is the worker's own:
//! `worker::otel`, feature `otel`.)

pub mod alerts;
pub mod metrics;
pub mod status;
