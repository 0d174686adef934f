package dev.llmrelay.gateway.conversation;

import java.sql.Timestamp;
import java.time.Instant;
import java.util.Optional;

import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

@Repository
class BrowserSessionRepository {

    private final JdbcClient jdbc;

    BrowserSessionRepository(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    void insert(String tokenHash, long keyId, Instant createdAt, Instant expiresAt) {
        jdbc.sql("INSERT INTO browser_session (token_hash, key_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
                .params(tokenHash, keyId, Timestamp.from(createdAt), Timestamp.from(expiresAt))
                .update();
    }

    /** The key id of a session that has not expired. */
    Optional<Long> findKeyId(String tokenHash, Instant now) {
        return jdbc.sql("SELECT key_id FROM browser_session WHERE token_hash = ? AND expires_at > ?")
                .params(tokenHash, Timestamp.from(now))
                .query(Long.class).optional();
    }

    void delete(String tokenHash) {
        jdbc.sql("DELETE FROM browser_session WHERE token_hash = ?").param(tokenHash).update();
    }

    int deleteExpired(Instant now) {
        return jdbc.sql("DELETE FROM browser_session WHERE expires_at <= ?").param(Timestamp.from(now)).update();
    }
}
