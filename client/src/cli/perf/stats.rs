//! Counting, latency histograms, progress lines and the final summary of a perf run.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Progress is printed this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Running totals of one perf run. Latencies are kept in microseconds (1 µs .. 60 s, three
/// significant digits).
#[derive(Debug)]
pub struct Stats {
    label: &'static str,
    histogram: Histogram<u64>,
    records: u64,
    bytes: u64,
    started: Instant,
    last_report: Instant,
    reported_records: u64,
    reported_bytes: u64,
}

impl Stats {
    pub fn new(label: &'static str) -> Stats {
        let now = Instant::now();
        Stats {
            label,
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("static histogram bounds are valid"),
            records: 0,
            bytes: 0,
            started: now,
            last_report: now,
            reported_records: 0,
            reported_bytes: 0,
        }
    }

    /// Restarts the clock (after set-up work that should not count).
    pub fn restart_clock(&mut self) {
        self.started = Instant::now();
        self.last_report = self.started;
    }

    pub fn add(&mut self, records: u64, bytes: u64) {
        self.records += records;
        self.bytes += bytes;
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn record_latency(&mut self, latency: Duration) {
        self.histogram
            .saturating_record((latency.as_micros() as u64).max(1));
    }

    /// Prints a progress line to stderr when one is due.
    pub fn report_progress(&mut self) {
        let since = self.last_report.elapsed();
        if since < PROGRESS_EVERY {
            return;
        }
        let seconds = since.as_secs_f64();
        let records = self.records - self.reported_records;
        let bytes = self.bytes - self.reported_bytes;
        eprintln!(
            "{}: {} records so far, {:.0} records/s, {:.2} MB/s, p99 {:.3} ms",
            self.label,
            self.records,
            records as f64 / seconds,
            bytes as f64 / seconds / 1e6,
            self.histogram.value_at_quantile(0.99) as f64 / 1000.0
        );
        self.last_report = Instant::now();
        self.reported_records = self.records;
        self.reported_bytes = self.bytes;
    }

    /// The final summary since the clock started.
    pub fn summary(&self) -> String {
        summary_line(
            self.label,
            self.records,
            self.bytes,
            self.started.elapsed(),
            &self.histogram,
        )
    }
}

/// `label: N records in S s, R records/s, M MB/s; latency ms p50 .. max ..` (MB = 10^6 bytes
/// of record keys and values).
pub fn summary_line(
    label: &str,
    records: u64,
    bytes: u64,
    elapsed: Duration,
    histogram: &Histogram<u64>,
) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let mut line = format!(
        "{label}: {records} records in {seconds:.2} s, {:.0} records/s, {:.2} MB/s",
        records as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
    line.push_str(&latency_text(histogram));
    line
}

/// `; latency ms p50 .. p95 .. p99 .. p99.9 .. max ..` of microsecond samples, or `; no latency
/// samples`.
pub fn latency_text(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "; no latency samples".to_owned();
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    format!(
        "; latency ms p50 {:.3} p95 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.95)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.value_at_quantile(0.999)),
        ms(histogram.max())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_format() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for micros in 1..=1000 {
            histogram.record(micros).unwrap();
        }
        let line = summary_line(
            "produce",
            2_000_000,
            200_000_000,
            Duration::from_secs(2),
            &histogram,
        );
        assert_eq!(
            line,
            "produce: 2000000 records in 2.00 s, 1000000 records/s, 100.00 MB/s; \
             latency ms p50 0.500 p95 0.950 p99 0.990 p99.9 0.999 max 1.000"
        );
        let empty = Histogram::<u64>::new(3).unwrap();
        assert!(summary_line("x", 0, 0, Duration::ZERO, &empty).ends_with("no latency samples"));
    }

    #[test]
    fn stats_accumulate() {
        let mut stats = Stats::new("t");
        stats.add(10, 1000);
        stats.add(5, 500);
        stats.record_latency(Duration::from_micros(1500));
        stats.record_latency(Duration::ZERO);
        assert_eq!(stats.records(), 15);
        assert!(stats.summary().starts_with("t: 15 records in "));
    }
}
