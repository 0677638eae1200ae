//! The Prometheus exposition: [`render`] turns a
//! [`StatsReport`](crate::control::model::StatsReport) into the text format
//! 0.0.4 through prometheus-client (`exposition.rs`), and [`MetricsServer`]
//! serves it over HTTP/1.1 on the control plane's bounded server
//! ([`super::server`]), with request heads parsed by httparse (`http.rs`).
//!
//! Invariants of the text: every family is one block (`# HELP`, `# TYPE`,
//! then all its samples), so no family name appears twice; counters end in
//! `_total` and sizes are in bytes. Every drop reason and event in a
//! worker's map is written, zeros included, so `rate()` has a first point
//! from the first scrape. Two VIP reports with the same labels (a retired VIP
//! draining beside a new one of the same name and address) become one series
//! with their counters summed, since a scrape must not carry a series twice.
//! The report is a prometheus-client
//! [`Collector`](prometheus_client::collector::Collector) of constant
//! metrics: a scrape writes the snapshot the control thread holds, it keeps
//! no metric state of its own.
//!
//! Directions follow the datapath's counters: `in` is client to backend,
//! `out` is backend to client.
//!
//! The server answers one request per connection (`Connection: close`):
//! `GET`/`HEAD` on `/metrics` and `/`, 404 for other paths, 405 for other
//! methods. A request head is read within [`READ_TIMEOUT`] and
//! [`MAX_HEAD_BYTES`] (408 and 431 otherwise; 431 too past [`MAX_HEADERS`]
//! fields); a request that is not HTTP/1.x gets 400 as soon as the parser
//! sees it; the response is sent within [`WRITE_TIMEOUT`] in all, or the
//! connection is dropped. At most [`MAX_CONNECTIONS`] connections are served at once, each
//! on its own thread, so one slow client does not hold up a scrape; a
//! connection beyond that gets 503 and is closed at once.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod exposition;
mod http;

pub use exposition::{render, CONTENT_TYPE};
pub use http::{
    exposure_warning, parse_head, route, Head, HeadError, MetricsError, MetricsServer,
    MetricsSource, MAX_CONNECTIONS, MAX_HEADERS, MAX_HEAD_BYTES, READ_TIMEOUT, WRITE_TIMEOUT,
};

#[cfg(test)]
mod tests;
