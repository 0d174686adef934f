package dev.llmrelay.gateway.identity;

import java.sql.Timestamp;
import java.time.Instant;
import java.util.List;

import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

@Repository
class SystemPromptRepository {

    private final JdbcClient jdbc;

    SystemPromptRepository(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    List<SystemPrompt> findAll() {
        return jdbc.sql("SELECT scope, target, prompt, mode, updated_at FROM system_prompt ORDER BY scope, target")
                .query((rs, n) -> new SystemPrompt(rs.getString(1), rs.getString(2), rs.getString(3),
                        rs.getString(4), rs.getTimestamp(5).toInstant()))
                .list();
    }

    /** Sets the prompt of (scope, target), replacing one already there (call inside a transaction). */
    void put(String scope, String target, String prompt, String mode, Instant now) {
        int updated = jdbc.sql("UPDATE system_prompt SET prompt = ?, mode = ?, updated_at = ? WHERE scope = ? "
                        + "AND target = ?").params(prompt, mode, Timestamp.from(now), scope, target).update();
        if (updated == 0) {
            jdbc.sql("INSERT INTO system_prompt (scope, target, prompt, mode, updated_at) VALUES (?, ?, ?, ?, ?)")
                    .params(scope, target, prompt, mode, Timestamp.from(now)).update();
        }
    }

    boolean delete(String scope, String target) {
        return jdbc.sql("DELETE FROM system_prompt WHERE scope = ? AND target = ?").params(scope, target).update() > 0;
    }
}
