package dev.llmrelay.gateway.usage;

import java.sql.Timestamp;
import java.time.Instant;
import java.util.List;

import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

import io.swagger.v3.oas.annotations.media.Schema;

import dev.llmrelay.gateway.system.StoredText;

@Repository
class UsageRepository {

    private static final String INSERT = "INSERT INTO usage_record (request_id, key_id, endpoint, upstream, model, "
            + "streamed, prompt_tokens, completion_tokens, usage_source, end_reason, http_status, ttft_ms, duration_ms, "
            + "created_at, request_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

    private final JdbcClient jdbc;
    private final JdbcTemplate template;

    UsageRepository(JdbcClient jdbc, JdbcTemplate template) {
        this.jdbc = jdbc;
        this.template = template;
    }

    void insert(UsageRecord r) {
        jdbc.sql(INSERT).params(columns(r)).update();
    }

    /** One JDBC batch: one round trip (and one transaction) for many rows. */
    void insertAll(List<UsageRecord> records) {
        template.batchUpdate(INSERT, records.stream().map(UsageRepository::columns).toList());
    }

    private static Object[] columns(UsageRecord r) {
        return new Object[] {r.requestId(), r.keyId(), r.endpoint(), r.upstream(),
                StoredText.encode(truncate(r.model(), 200)), r.streamed(), r.promptTokens(), r.completionTokens(),
                r.usageSource(), r.endReason().name(), r.httpStatus(), r.ttftMs(), r.durationMs(),
                Timestamp.from(r.createdAt()), r.requestCount()};
    }

    /** Totals per key in [from, to); aggregated rows count as the requests they stand for. */
    record KeyTotals(
            @Schema(types = {"integer", "null"}, format = "int64", description = "null: requests without a key")
            Long keyId,
            @Schema(types = {"string", "null"}, description = "null: no key, or the key was deleted") String keyName,
            long requests, long promptTokens, long completionTokens, long cancelled, long errors, long rateLimited) {
    }

    List<KeyTotals> totals(Instant from, Instant to, Long keyId) {
        String sql = "SELECT u.key_id, k.name, COALESCE(SUM(u.request_count), 0) AS requests, "
                + "COALESCE(SUM(u.prompt_tokens), 0) AS prompt, "
                + "COALESCE(SUM(u.completion_tokens), 0) AS completion, "
                + "SUM(CASE WHEN u.end_reason = 'client_cancelled' THEN u.request_count ELSE 0 END) AS cancelled, "
                + "SUM(CASE WHEN u.end_reason = 'upstream_error' THEN u.request_count ELSE 0 END) AS errors, "
                + "SUM(CASE WHEN u.end_reason = 'rate_limited' THEN u.request_count ELSE 0 END) AS limited "
                + "FROM usage_record u LEFT JOIN api_key k ON k.id = u.key_id "
                + "WHERE u.created_at >= ? AND u.created_at < ? "
                + (keyId != null ? "AND u.key_id = ? " : "")
                + "GROUP BY u.key_id, k.name ORDER BY u.key_id";
        var statement = jdbc.sql(sql).param(Timestamp.from(from)).param(Timestamp.from(to));
        if (keyId != null) {
            statement = statement.param(keyId);
        }
        return statement.query((rs, i) -> new KeyTotals(rs.getObject("key_id") == null ? null : rs.getLong("key_id"),
                StoredText.decode(rs.getString("name")), rs.getLong("requests"), rs.getLong("prompt"),
                rs.getLong("completion"), rs.getLong("cancelled"), rs.getLong("errors"), rs.getLong("limited"))).list();
    }

    List<UsageRecord> recent(int limit, Long keyId) {
        String sql = "SELECT * FROM usage_record " + (keyId != null ? "WHERE key_id = ? " : "")
                + "ORDER BY id DESC LIMIT ?";
        var statement = jdbc.sql(sql);
        if (keyId != null) {
            statement = statement.param(keyId);
        }
        return statement.param(limit).query((rs, i) -> new UsageRecord(rs.getString("request_id"),
                rs.getObject("key_id") == null ? null : rs.getLong("key_id"), rs.getString("endpoint"),
                rs.getString("upstream"), StoredText.decode(rs.getString("model")), rs.getBoolean("streamed"),
                rs.getInt("prompt_tokens"), rs.getInt("completion_tokens"), rs.getString("usage_source"),
                EndReason.valueOf(rs.getString("end_reason")), rs.getInt("http_status"),
                rs.getObject("ttft_ms") == null ? null : rs.getLong("ttft_ms"), rs.getLong("duration_ms"),
                rs.getTimestamp("created_at").toInstant(), rs.getInt("request_count"))).list();
    }

    private static String truncate(String value, int max) {
        return value == null || value.length() <= max ? value : value.substring(0, max);
    }
}
