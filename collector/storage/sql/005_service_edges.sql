-- Service graph. The collector pairs each CLIENT span with the SERVER span
-- whose parent it is and inserts one row per call into tracemesh_edge_calls;
-- that table keeps nothing (Null engine): the view below folds each call into
-- per-minute, per-edge counts and latency t-digests on both sides.
CREATE TABLE IF NOT EXISTS tracemesh_edge_calls (
    Timestamp DateTime64(9),
    Client LowCardinality(String),
    Server LowCardinality(String),
    -- '' for a paired call, 'user' for an entry call with no client span,
    -- 'virtual' for a client span whose peer (peer.service, db.system) sends no spans.
    ConnectionType LowCardinality(String),
    ClientDuration UInt64,
    ServerDuration UInt64,
    Failed UInt8
) ENGINE = Null;

CREATE TABLE IF NOT EXISTS tracemesh_edges_1m (
    Minute DateTime CODEC(Delta, ZSTD(1)),
    Client LowCardinality(String),
    Server LowCardinality(String),
    ConnectionType LowCardinality(String),
    Requests SimpleAggregateFunction(sum, UInt64),
    Failed SimpleAggregateFunction(sum, UInt64),
    ClientLatency AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt64),
    ServerLatency AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toDate(Minute)
ORDER BY (Client, Server, ConnectionType, Minute)
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS tracemesh_edges_1m_mv
TO tracemesh_edges_1m
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    Client,
    Server,
    ConnectionType,
    toUInt64(count()) AS Requests,
    toUInt64(sum(Failed)) AS Failed,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ClientDuration) AS ClientLatency,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(ServerDuration) AS ServerLatency
FROM tracemesh_edge_calls
GROUP BY Minute, Client, Server, ConnectionType;
