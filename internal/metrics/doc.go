// Package metrics is Kiln's metrics store. The gateway records every
// invocation into it; the alarm engine, the CloudWatch-style APIs
// (GetMetricStatistics, ListMetrics) and `kiln metrics ENDPOINT` query it;
// Prometheus scrapes it.
//
// # Series and recording
//
// A Series holds one fleet: an endpoint's variant served by one endpoint
// config. The gateway resolves it once per routing table with
// Store.Series and calls Series.Record for every request. Record costs a
// clock reading (skipped when the caller passes Sample.Time), a table
// lookup per latency and a few field updates under one of the series'
// shard locks; it never allocates. The shards (one per processor, at most
// eight) stripe a series so that concurrent requests rarely wait for each
// other; there is no lock shared between series.
//
// For every second a series keeps the SageMaker metrics of REFERENCE.md §5:
// Invocations, Invocation4XXErrors, Invocation5XXErrors and
// InvocationModelErrors as counts among the second's requests (each request
// is one data point of 0 or 1, so Sum, Average, SampleCount, Minimum and
// Maximum mean what CloudWatch says they mean), InvocationsPerInstance
// (each request contributes 1/instances), and ModelLatency and
// OverheadLatency in microseconds: exact count, sum, minimum and maximum,
// plus a sketch that answers any percentile.
//
// The Store starts no goroutines. A second is closed, compressed and
// appended to the series' history by whichever Record, query or scrape
// first sees the clock pass it; a minute is rolled up from its seconds the
// same way. Queries therefore see a second once it has ended. The seconds
// follow the clock forward only: a sample stamped before the live second
// counts in the live second.
//
// # Accuracy
//
// Counts, sums, minima and maxima are exact. Percentiles come from a
// DDSketch-style logarithmic sketch (Masson, Rim and Lee, "DDSketch: A Fast
// and Fully-Mergeable Quantile Sketch with Relative-Error Guarantees",
// VLDB 2019) with γ = 1.02 over 1 µs to 1 hour, 1113 buckets: the value
// reported for the quantile q of n values is within 0.99% of the exact
// value of rank floor(q·(n-1)), and p0 and p100 are the exact minimum and
// maximum. Sketches merge exactly, so a percentile over a minute, a
// variant's fleets or a whole endpoint has the same guarantee. The
// percentile of a count metric is exact (0 or 1); InvocationsPerInstance
// has no percentiles.
//
// # Retention and memory
//
// A series keeps SecondRetention (3 hours) of seconds and MinuteRetention
// (24 hours) of minutes, each in a ring of slots that exist only for
// intervals with traffic, grow to at most 10,802 seconds and 1,442 minutes,
// and shrink again when idle. A slot is 96 bytes plus its sketches, stored
// sparsely (only non-empty buckets, as varint pairs). A series also holds
// the live second's dense sketches, 8.9 KB. Measured by
// BenchmarkSeriesMemory (heap before and after filling a series with a day
// of traffic, lognormal latencies around 20 ms):
//
//	idle series                                  11 KB
//	10 requests a second                        2.4 MB
//	200 requests a second                       5.9 MB
//	every bucket of both sketches in every
//	retained second and minute                   61 MB
//
// The last case takes over a thousand requests a second spread over nine
// decades of latency; with many requests per bucket per second the varints
// grow, and the hard ceiling, whatever the traffic, is about 170 MB.
//
// # Queries
//
// Store.Query answers GetMetricStatistics: one statistic of one metric for
// the dimension set {EndpointName}, {EndpointName, VariantName} or
// {EndpointName, VariantName, EndpointConfigName}, merging the matching
// series, one datapoint per period (aligned to multiples of the period
// since the Unix epoch) that has data. Periods are any whole number of
// seconds within the last three hours; older data is answered from the
// minute roll-ups for periods that are whole minutes, as CloudWatch does.
// Store.ListMetrics and Store.Recent serve ListMetrics and the CLI.
//
// # Prometheus
//
// The Store exposes every series that has not been forgotten as
// kiln_invocations_total, kiln_invocation_errors_total{class="4xx|5xx|model"},
// and the histograms kiln_model_latency_seconds and
// kiln_overhead_latency_seconds, labelled endpoint, variant and config. The
// values are running totals of the closed seconds, read at scrape time, so
// requests pay nothing for the exposition (see prom.go).
package metrics
