package dev.llmrelay.gateway.keys;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.support.GeneratedKeyHolder;
import org.springframework.stereotype.Repository;

import dev.llmrelay.gateway.system.StoredText;

@Repository
class ApiKeyRepository {

    private static final String COLUMNS = "id, name, key_prefix, requests_per_minute, tokens_per_minute, "
            + "max_concurrent_streams, enabled, created_at, last_used_at, allow_fallback, budget_tokens, budget_period";

    private final JdbcClient jdbc;

    ApiKeyRepository(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    long insert(String name, String hash, String prefix, int rpm, int tpm, int streams, Instant now) {
        var keys = new GeneratedKeyHolder();
        jdbc.sql("INSERT INTO api_key (name, key_hash, key_prefix, requests_per_minute, tokens_per_minute, "
                        + "max_concurrent_streams, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, TRUE, ?)")
                .params(StoredText.encode(name), hash, prefix, rpm, tpm, streams, Timestamp.from(now))
                .update(keys, "id");
        return keys.getKey().longValue();
    }

    Optional<ApiKey> findByHash(String hash) {
        return jdbc.sql("SELECT " + COLUMNS + " FROM api_key WHERE key_hash = ?").param(hash)
                .query(ApiKeyRepository::map).optional();
    }

    Optional<ApiKey> findById(long id) {
        return jdbc.sql("SELECT " + COLUMNS + " FROM api_key WHERE id = ?").param(id)
                .query(ApiKeyRepository::map).optional();
    }

    List<ApiKey> findAll() {
        return jdbc.sql("SELECT " + COLUMNS + " FROM api_key ORDER BY id").query(ApiKeyRepository::map).list();
    }

    boolean existsByHash(String hash) {
        return jdbc.sql("SELECT COUNT(*) FROM api_key WHERE key_hash = ?").param(hash)
                .query(Long.class).single() > 0;
    }

    /**
     * Sets the given columns (null: keep) in one statement, so concurrent edits of different fields
     * never undo each other (a read-modify-write of the whole row did). False when there is no key.
     */
    boolean update(long id, String name, Integer requestsPerMinute, Integer tokensPerMinute,
            Integer maxConcurrentStreams, Boolean enabled, Boolean allowFallback) {
        return jdbc.sql("UPDATE api_key SET name = COALESCE(?, name), "
                        + "requests_per_minute = COALESCE(?, requests_per_minute), "
                        + "tokens_per_minute = COALESCE(?, tokens_per_minute), "
                        + "max_concurrent_streams = COALESCE(?, max_concurrent_streams), "
                        + "enabled = COALESCE(?, enabled), allow_fallback = COALESCE(?, allow_fallback) WHERE id = ?")
                .params(StoredText.encode(name), requestsPerMinute, tokensPerMinute, maxConcurrentStreams, enabled,
                        allowFallback, id)
                .update() > 0;
    }

    /** Sets the key's budget (null: none). False when there is no key. */
    boolean setBudget(long id, Budget budget) {
        return jdbc.sql("UPDATE api_key SET budget_tokens = ?, budget_period = ? WHERE id = ?")
                .params(budget == null ? null : budget.tokens(), budget == null ? null : budget.period().wire(), id)
                .update() > 0;
    }

    void touch(long id, Instant now) {
        jdbc.sql("UPDATE api_key SET last_used_at = ? WHERE id = ?").params(Timestamp.from(now), id).update();
    }

    boolean delete(long id) {
        return jdbc.sql("DELETE FROM api_key WHERE id = ?").param(id).update() > 0;
    }

    private static ApiKey map(ResultSet rs, int row) throws SQLException {
        Timestamp lastUsed = rs.getTimestamp("last_used_at");
        return new ApiKey(rs.getLong("id"), StoredText.decode(rs.getString("name")), rs.getString("key_prefix"),
                rs.getInt("requests_per_minute"), rs.getInt("tokens_per_minute"),
                rs.getInt("max_concurrent_streams"), rs.getBoolean("enabled"),
                rs.getTimestamp("created_at").toInstant(), lastUsed == null ? null : lastUsed.toInstant(),
                rs.getBoolean("allow_fallback"), budget(rs));
    }

    private static Budget budget(ResultSet rs) throws SQLException {
        long tokens = rs.getLong("budget_tokens");
        if (rs.wasNull()) {
            return null;
        }
        Budget.Period period = Budget.Period.ofWire(rs.getString("budget_period"));
        return period == null ? null : new Budget(tokens, period);
    }
}
