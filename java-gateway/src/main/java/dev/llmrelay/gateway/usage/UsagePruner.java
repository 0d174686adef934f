package dev.llmrelay.gateway.usage;

import java.sql.Timestamp;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;

/**
 * Deletes request rows older than {@code gateway.usage.retention}, a batch at a time so no statement holds
 * the table long; reports and budgets read the hourly rollups, which stay. Every instance may run it at once:
 * deleting is idempotent.
 */
@Component
class UsagePruner {

    private static final Logger log = LoggerFactory.getLogger(UsagePruner.class);
    static final int BATCH = 10_000;

    private final JdbcClient jdbc;
    private final Duration retention;
    private final Clock clock = Clock.systemUTC();

    UsagePruner(JdbcClient jdbc, GatewayProperties properties) {
        this.jdbc = jdbc;
        this.retention = properties.usage().retention();
    }

    @Scheduled(fixedDelayString = "PT1H", initialDelayString = "PT2M")
    void pruneOnSchedule() {
        try {
            prune();
        } catch (RuntimeException e) {
            log.warn("pruning usage rows failed; the next hour tries again", e);
        }
    }

    /** Deletes every row past the retention; returns how many. */
    long prune() {
        if (retention.isZero() || retention.isNegative()) {
            return 0;
        }
        Timestamp before = Timestamp.from(Instant.now(clock).minus(retention));
        long deleted = 0;
        int batch;
        do {
            batch = jdbc.sql("DELETE FROM usage_record WHERE id IN (SELECT id FROM usage_record WHERE created_at < ? "
                    + "ORDER BY id LIMIT " + BATCH + ")").param(before).update();
            deleted += batch;
        } while (batch == BATCH);
        if (deleted > 0) {
            log.info("deleted {} usage rows older than {}", deleted, retention);
        }
        return deleted;
    }
}
