package dev.llmrelay.gateway.usage;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import javax.sql.DataSource;

import org.flywaydb.core.Flyway;
import org.springframework.jdbc.core.JdbcTemplate;

import dev.llmrelay.gateway.support.PostgresServer;
import dev.llmrelay.gateway.usage.UsageRollups.Dimension;

/**
 * Usage reports over N generated request rows (default 10 million: 200 keys, 4 models, 30 days), on H2 (a
 * file database, as `make run` uses) and on PostgreSQL (Debian's, a throwaway cluster): the per-key totals
 * read from the rows (the report before rollups, the baseline) against the same and other reports read from
 * the hourly rollups. The rollups are filled from the rows by the V70 migration's backfill, which builds the
 * same cells the writer adds as requests end. Each query runs 5 times; the median is printed with the load
 * average. Run: bench/usage_reports.sh [rows] [h2|postgres|both].
 */
public final class UsageReportBench {

    private static final int KEYS = 200;
    private static final String[] MODELS = {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "chatglm3-6b",
            "Qwen/Qwen2.5-7B-Instruct"};

    public static void main(String[] args) throws Exception {
        long rows = args.length > 0 ? Long.parseLong(args[0]) : 10_000_000L;
        String which = args.length > 1 ? args[1] : "both";
        Instant end = Instant.now().truncatedTo(ChronoUnit.HOURS);
        Instant start = end.minus(30, ChronoUnit.DAYS);
        if (!which.equals("postgres")) {
            Path dir = Files.createTempDirectory("usage-bench-h2");
            // one connection kept open, as the gateway's pool keeps them: opening an H2 file database of 10M rows
            // for each query (DriverManagerDataSource) cost more than the queries themselves
            run("H2 (file)", pooled("jdbc:h2:file:" + dir.resolve("db") + ";DB_CLOSE_ON_EXIT=FALSE", "sa"), false,
                    rows, start, end);
        }
        if (!which.equals("h2")) {
            run("PostgreSQL", pooled(PostgresServer.jdbcUrl(), PostgresServer.user()), true, rows, start, end);
        }
        System.exit(0);
    }

    private static DataSource pooled(String url, String user) {
        org.springframework.jdbc.datasource.SingleConnectionDataSource data =
                new org.springframework.jdbc.datasource.SingleConnectionDataSource(url, user, "", true);
        data.setAutoCommit(true);
        return data;
    }

    private static void run(String name, DataSource data, boolean postgres, long rows, Instant start, Instant end)
            throws Exception {
        Flyway.configure().dataSource(data).locations("classpath:db/migration").outOfOrder(true)
                .target(org.flywaydb.core.api.MigrationVersion.fromVersion("71")).load().migrate();
        JdbcTemplate jdbc = new JdbcTemplate(data);
        long seconds = java.time.Duration.between(start, end).toSeconds();
        String models = "CASE MOD(x, 4) WHEN 0 THEN '" + MODELS[0] + "' WHEN 1 THEN '" + MODELS[1] + "' WHEN 2 THEN '"
                + MODELS[2] + "' ELSE '" + MODELS[3] + "' END";
        String reasons = "CASE MOD(x, 10) WHEN 0 THEN 'length' WHEN 1 THEN 'client_cancelled' WHEN 2 THEN 'upstream_error' "
                + "ELSE 'stop' END";
        String columns = "INSERT INTO usage_record (request_id, key_id, endpoint, upstream, model, streamed, prompt_tokens, "
                + "completion_tokens, usage_source, end_reason, http_status, ttft_ms, duration_ms, created_at, request_count) ";
        String values = "SELECT 'bench-' || x, MOD(x, " + KEYS + ") + 1, 'chat.completions', NULL, " + models + ", TRUE, "
                + "MOD(x, 500), MOD(x * 7, 700), 'reported', " + reasons + ", 200, MOD(x * 13, 2000), MOD(x * 17, 30000), ";
        long began = System.nanoTime();
        if (postgres) {
            jdbc.execute(columns + values + "TIMESTAMPTZ '" + start + "' + (x * " + seconds + " / " + rows
                    + ") * INTERVAL '1 second', 1 FROM generate_series(1::bigint, " + rows + "::bigint) AS g(x)");
            jdbc.execute("ANALYZE usage_record");
        } else {
            for (long from = 1; from <= rows; from += 1_000_000) { // H2 inserts a million at a time
                long to = Math.min(rows, from + 999_999);
                jdbc.execute(columns + values.replace("'bench-' || x", "CONCAT('bench-', x)")
                        + "DATEADD(SECOND, x * " + seconds + " / " + rows + ", TIMESTAMP WITH TIME ZONE '" + start + "'), 1 "
                        + "FROM SYSTEM_RANGE(" + from + ", " + to + ") AS g(x)");
            }
        }
        double generated = seconds(began);
        began = System.nanoTime();
        try (var connection = data.getConnection()) { // the one connection: close() is suppressed
            connection.setAutoCommit(false);
            RollupBackfills.run(connection);
            connection.commit();
            connection.setAutoCommit(true);
        }
        if (postgres) {
            jdbc.execute("ANALYZE usage_rollup");
            jdbc.execute("ANALYZE usage_rollup_day");
        }
        double backfilled = seconds(began);
        long cells = jdbc.queryForObject("SELECT COUNT(*) FROM usage_rollup", Long.class);
        long dayCells = jdbc.queryForObject("SELECT COUNT(*) FROM usage_rollup_day", Long.class);
        long counted = jdbc.queryForObject("SELECT COUNT(*) FROM usage_record", Long.class);
        System.out.printf("%n== %s: %,d request rows generated in %.1f s; %,d hourly and %,d daily rollup cells built "
                + "from them in %.1f s%n", name, counted, generated, cells, dayCells, backfilled);

        UsageRepository raw = new UsageRepository(org.springframework.jdbc.core.simple.JdbcClient.create(data), jdbc);
        UsageRollups rollups = new UsageRollups(jdbc);
        Instant day = end.minus(1, ChronoUnit.DAYS);
        Instant week = end.minus(7, ChronoUnit.DAYS);
        List<String[]> table = new ArrayList<>();
        // each run asks with a different end (a millisecond later): H2 hands back a cached result for the same
        // statement and parameters while the tables are unchanged, which would time nothing
        double baseline = time(i -> raw.totals(start, end.plusMillis(i), null).size(), 3);
        table.add(row("per-key totals, 30 days, from the request rows (before: GET /admin/usage)", baseline, baseline,
                raw.totals(start, end, null).size()));
        table.add(row("per-key totals, 30 days, from one key's rows", time(i -> raw.totals(start, end.plusMillis(i), 7L)
                .size(), 5), baseline, 1));
        addRollup(table, "groupBy=key, 30 days", i -> rollups.report(start, end.plusMillis(i), List.of(Dimension.key),
                null, null, Map.of()).size(), baseline);
        addRollup(table, "groupBy=day,model, 30 days (the console's 30-day chart)", i -> rollups.report(start,
                end.plusMillis(i), List.of(Dimension.day, Dimension.model), null, null, Map.of()).size(), baseline);
        addRollup(table, "groupBy=hour,key, 7 days, all keys", i -> rollups.report(week, end.plusMillis(i),
                List.of(Dimension.hour, Dimension.key), null, null, Map.of()).size(), baseline);
        addRollup(table, "groupBy=hour,model, 24 hours, one key", i -> rollups.report(day, end.plusMillis(i),
                List.of(Dimension.hour, Dimension.model), 7L, null, Map.of()).size(), baseline);
        addRollup(table, "groupBy=hour, 24 hours, one model", i -> rollups.report(day, end.plusMillis(i),
                List.of(Dimension.hour), null, MODELS[1], Map.of()).size(), baseline);
        addRollup(table, "a key's tokens this month (a budget's seed)", i -> (int) Math.min(1, rollups.tokensSince(7L,
                start.minusMillis(i))), baseline);
        System.out.println("| query | median ms (5 runs; the row scan 3) | the row scan's time / this | groups |");
        System.out.println("|---|---:|---:|---:|");
        for (String[] r : table) {
            System.out.println("| " + String.join(" | ", r) + " |");
        }
        System.out.println("load average at the end: " + Files.readString(Path.of("/proc/loadavg")).trim());
    }

    private static void addRollup(List<String[]> table, String what, java.util.function.IntFunction<Integer> query,
            double baseline) {
        double ms = time(query, 5);
        table.add(row(what + ", from the rollups", ms, baseline, query.apply(0)));
    }

    private static String[] row(String what, double ms, double baseline, int groups) {
        return new String[] {what, String.format("%.1f", ms), String.format("%.1fx", baseline / ms),
                Integer.toString(groups)};
    }

    /** Median of {@code n} timed runs after one warm-up, in ms; run i gets i + 1 (to vary its parameters). */
    private static double time(java.util.function.IntFunction<Integer> query, int n) {
        query.apply(n + 1);
        double[] runs = new double[n];
        for (int i = 0; i < runs.length; i++) {
            long began = System.nanoTime();
            query.apply(i + 1);
            runs[i] = (System.nanoTime() - began) / 1e6;
        }
        Arrays.sort(runs);
        return runs[n / 2];
    }

    private static double seconds(long began) {
        return (System.nanoTime() - began) / 1e9;
    }
}
