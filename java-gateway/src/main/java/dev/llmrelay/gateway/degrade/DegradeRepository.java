package dev.llmrelay.gateway.degrade;

import java.util.LinkedHashMap;
import java.util.Map;

import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

import dev.llmrelay.gateway.system.StoredText;

/** The {@code degrade_setting} rows, read as one {@link DegradePolicy}. */
@Repository
class DegradeRepository {

    static final String SWITCH = "switch";
    static final String PAUSED = "paused";
    static final String FALLBACK = "fallback";
    static final String MAX_TOKENS_CAP = "max_tokens_cap";
    static final String REFUSE_NEW_CONVERSATIONS = "refuse_new_conversations";

    private final JdbcClient jdbc;

    DegradeRepository(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    DegradePolicy load() {
        Map<String, String> switches = new LinkedHashMap<>();
        Map<String, String> paused = new LinkedHashMap<>();
        Map<String, String> fallbacks = new LinkedHashMap<>();
        jdbc.sql("SELECT kind, subject, setting_value FROM degrade_setting ORDER BY kind, subject").query(rs -> {
            String kind = rs.getString("kind");
            String subject = StoredText.decode(rs.getString("subject"));
            String value = StoredText.decode(rs.getString("setting_value"));
            switch (kind) {
                case SWITCH -> switches.put(subject, value);
                case PAUSED -> paused.put(subject, value);
                case FALLBACK -> fallbacks.put(subject, value);
                default -> { } // a kind of a newer version: ignored
            }
        });
        String cap = switches.get(MAX_TOKENS_CAP);
        return new DegradePolicy(cap == null ? null : Integer.valueOf(cap), paused,
                switches.get(REFUSE_NEW_CONVERSATIONS), fallbacks);
    }

    /**
     * Applies a change: each entry of {@code changes} is (kind, subject) -> new value, null to delete.
     * Run it inside {@link PolicySource#change} (one transaction with the version bump).
     */
    void apply(Map<Setting, String> changes) {
        changes.forEach((setting, value) -> {
            jdbc.sql("DELETE FROM degrade_setting WHERE kind = ? AND subject = ?")
                    .params(setting.kind(), StoredText.encode(setting.subject())).update();
            if (value != null) {
                jdbc.sql("INSERT INTO degrade_setting (kind, subject, setting_value) VALUES (?, ?, ?)")
                        .params(setting.kind(), StoredText.encode(setting.subject()), StoredText.encode(value))
                        .update();
            }
        });
    }

    record Setting(String kind, String subject) {
    }
}
