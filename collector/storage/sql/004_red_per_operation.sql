-- Rate, errors and duration per minute for every service, operation and span
-- kind. The latency state is a t-digest, so minutes merge into any window.
CREATE TABLE IF NOT EXISTS tracemesh_red_1m (
    Minute DateTime CODEC(Delta, ZSTD(1)),
    ServiceName LowCardinality(String),
    SpanName LowCardinality(String),
    SpanKind LowCardinality(String),
    Requests SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    DurationSum SimpleAggregateFunction(sum, UInt64),
    Latency AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toDate(Minute)
ORDER BY (ServiceName, SpanKind, SpanName, Minute)
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS tracemesh_red_1m_mv
TO tracemesh_red_1m
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    SpanName,
    SpanKind,
    toUInt64(count()) AS Requests,
    toUInt64(countIf(StatusCode = 'Error')) AS Errors,
    toUInt64(sum(Duration)) AS DurationSum,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(Duration) AS Latency
FROM otel_traces
GROUP BY Minute, ServiceName, SpanName, SpanKind;
