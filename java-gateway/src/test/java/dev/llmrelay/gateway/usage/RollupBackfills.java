package dev.llmrelay.gateway.usage;

import java.sql.Connection;

import org.flywaydb.core.api.configuration.Configuration;
import org.flywaydb.core.api.migration.Context;

import db.migration.V70__Backfill_usage_rollup;
import db.migration.V72__Backfill_usage_rollup_day;

/** Runs the rollup backfill migrations (hourly, then daily cells from the rows) on a connection, as Flyway would. */
final class RollupBackfills {

    private RollupBackfills() {
    }

    static void run(Connection connection) throws Exception {
        Context context = new Context() {
            @Override
            public Configuration getConfiguration() {
                return null; // the backfills read only the connection
            }

            @Override
            public Connection getConnection() {
                return connection;
            }
        };
        new V70__Backfill_usage_rollup().migrate(context);
        new V72__Backfill_usage_rollup_day().migrate(context);
    }
}
