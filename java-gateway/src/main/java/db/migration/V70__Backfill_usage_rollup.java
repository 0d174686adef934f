package db.migration;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.flywaydb.core.api.migration.BaseJavaMigration;
import org.flywaydb.core.api.migration.Context;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;

import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecord;
import dev.llmrelay.gateway.usage.UsageRollups;

/**
 * Fills the hourly rollups (V68) from the request rows written before they existed, once (Flyway runs it
 * under its lock, so several instances starting together do it once). Reads the rows in id order, a chunk
 * at a time, and adds each chunk's cells.
 */
public class V70__Backfill_usage_rollup extends BaseJavaMigration {

    static final int CHUNK = 50_000;

    @Override
    public void migrate(Context context) throws Exception {
        backfill(context.getConnection(), UsageRollups.Grain.HOUR);
    }

    /** Adds every request row to its {@code grain} cells (V72 does the daily ones). */
    static void backfill(Connection connection, UsageRollups.Grain grain) throws Exception {
        JdbcTemplate jdbc = new JdbcTemplate(new SingleConnectionDataSource(connection, true));
        long after = Long.MIN_VALUE;
        while (true) {
            List<UsageRecord> chunk = new ArrayList<>(CHUNK);
            try (PreparedStatement select = connection.prepareStatement("SELECT id, key_id, model, created_at, "
                    + "prompt_tokens, completion_tokens, end_reason, ttft_ms, duration_ms, request_count FROM usage_record "
                    + "WHERE id > ? ORDER BY id FETCH FIRST " + CHUNK + " ROWS ONLY")) {
                select.setLong(1, after);
                try (ResultSet rs = select.executeQuery()) {
                    while (rs.next()) {
                        after = rs.getLong(1);
                        long key = rs.getLong(2);
                        Long keyId = rs.wasNull() ? null : key;
                        long ttft = rs.getLong(8);
                        Long ttftMs = rs.wasNull() ? null : ttft;
                        chunk.add(new UsageRecord("backfill", keyId, "", null, rs.getString(3), true, rs.getInt(5),
                                rs.getInt(6), "reported", reason(rs.getString(7)), 200, ttftMs, rs.getLong(9),
                                rs.getTimestamp(4).toInstant(), rs.getInt(10)));
                    }
                }
            }
            if (chunk.isEmpty()) {
                return;
            }
            // the rows' model is stored encoded already (StoredText): add the cells without encoding it again
            for (Map.Entry<UsageRollups.Cell, long[]> cell : UsageRollups.aggregateStored(chunk, grain).entrySet()) {
                UsageRollups.upsert(jdbc, grain, cell.getKey(), cell.getValue());
            }
        }
    }

    private static EndReason reason(String stored) {
        try {
            return EndReason.valueOf(stored);
        } catch (IllegalArgumentException | NullPointerException e) {
            return EndReason.upstream_error; // not expected: every stored reason is one of the enum's
        }
    }
}
