package db.migration;

import org.flywaydb.core.api.migration.BaseJavaMigration;
import org.flywaydb.core.api.migration.Context;

import dev.llmrelay.gateway.usage.UsageRollups;

/** Fills the daily cells (V71) from the request rows written before them, once, as V70 did the hourly ones. */
public class V72__Backfill_usage_rollup_day extends BaseJavaMigration {

    @Override
    public void migrate(Context context) throws Exception {
        V70__Backfill_usage_rollup.backfill(context.getConnection(), UsageRollups.Grain.DAY);
    }
}
