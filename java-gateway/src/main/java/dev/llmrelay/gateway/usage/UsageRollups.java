package dev.llmrelay.gateway.usage;

import java.sql.Timestamp;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.springframework.dao.DuplicateKeyException;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Repository;

import dev.llmrelay.gateway.system.StoredText;

/**
 * Usage per key x model x hour ({@code usage_rollup}) and per UTC day ({@code usage_rollup_day}), added to as
 * usage rows are written (in their transaction, {@link UsageWriter}), so reports read at most one row per key,
 * model and hour (or day, for the whole days of a range not grouped by hour) whatever the number of requests. Each cell holds the requests, tokens, requests by end reason and two histograms
 * (time to first token, duration) whose buckets add up when cells merge; percentiles are read off them.
 */
@Repository
public class UsageRollups {

    /** Upper bounds (ms) of the time-to-first-token buckets; a 16th bucket takes the rest. */
    static final long[] TTFT_BOUNDS_MS = {25, 50, 100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 5000, 10_000,
            20_000, 60_000};
    /** Upper bounds (ms) of the duration buckets; a 16th bucket takes the rest. */
    static final long[] DURATION_BOUNDS_MS = {100, 250, 500, 1000, 2000, 4000, 8000, 15_000, 30_000, 60_000,
            120_000, 300_000, 600_000, 1_200_000, 3_600_000};
    static final int BUCKETS = 16;
    /** stored for requests without a key / without a model (the key columns cannot be null) */
    static final long NO_KEY = -1;
    static final String NO_MODEL = "";

    private static final EndReason[] REASONS = EndReason.values();
    private static final String REASON_COLUMNS = Arrays.stream(REASONS).map(r -> "e_" + r.name())
            .collect(Collectors.joining(", "));
    private static final String BUCKET_COLUMNS = IntStream.range(0, BUCKETS).mapToObj(i -> String.format("t%02d", i))
            .collect(Collectors.joining(", ")) + ", " + IntStream.range(0, BUCKETS)
            .mapToObj(i -> String.format("d%02d", i)).collect(Collectors.joining(", "));
    static final String COUNTER_COLUMNS = "requests, prompt_tokens, completion_tokens, " + REASON_COLUMNS + ", "
            + BUCKET_COLUMNS;
    private static final int COUNTERS = 3 + REASONS.length + 2 * BUCKETS;

    /** The two tables of cells: per hour, and the same per UTC day (long ranges read 24 times fewer cells). */
    public enum Grain {
        HOUR("usage_rollup", "hour_start", ChronoUnit.HOURS), DAY("usage_rollup_day", "day_start", ChronoUnit.DAYS);

        final String table;
        final String start;
        final ChronoUnit unit;
        final String update;
        final String insert;

        Grain(String table, String start, ChronoUnit unit) {
            this.table = table;
            this.start = start;
            this.unit = unit;
            this.update = "UPDATE " + table + " SET " + Arrays.stream(COUNTER_COLUMNS.split(", "))
                    .map(c -> c + " = " + c + " + ?").collect(Collectors.joining(", "))
                    + " WHERE " + start + " = ? AND key_id = ? AND model = ?";
            this.insert = "INSERT INTO " + table + " (" + start + ", key_id, model, " + COUNTER_COLUMNS
                    + ") VALUES (?, ?, ?" + ", ?".repeat(COUNTERS) + ")";
        }
    }

    private final JdbcTemplate jdbc;

    UsageRollups(JdbcTemplate jdbc) {
        this.jdbc = jdbc;
    }

    /** One cell's place: the hour (or day) and the key and model it counts. */
    public record Cell(Instant start, long keyId, String model) {
    }

    /** Adds {@code records} to their hourly and daily cells (call inside the transaction that writes them). */
    void add(List<UsageRecord> records) {
        for (Grain grain : Grain.values()) {
            for (Map.Entry<Cell, long[]> cell : aggregate(records, true, grain).entrySet()) {
                upsert(jdbc, grain, cell.getKey(), cell.getValue());
            }
        }
    }

    /**
     * The counters per {@code grain} cell of records read back from usage_record (whose model is stored encoded
     * already), in the order of {@link #COUNTER_COLUMNS}.
     */
    public static Map<Cell, long[]> aggregateStored(List<UsageRecord> records, Grain grain) {
        return aggregate(records, false, grain);
    }

    private static Map<Cell, long[]> aggregate(List<UsageRecord> records, boolean encode, Grain grain) {
        Map<Cell, long[]> cells = new LinkedHashMap<>();
        for (UsageRecord r : records) {
            Cell cell = new Cell(r.createdAt().truncatedTo(grain.unit), r.keyId() == null ? NO_KEY : r.keyId(),
                    r.model() == null ? NO_MODEL : encode ? StoredText.encode(truncate(r.model())) : r.model());
            long[] counters = cells.computeIfAbsent(cell, c -> new long[COUNTERS]);
            int requests = Math.max(1, r.requestCount());
            counters[0] += requests;
            counters[1] += r.promptTokens();
            counters[2] += r.completionTokens();
            counters[3 + r.endReason().ordinal()] += requests;
            if (r.ttftMs() != null) {
                counters[3 + REASONS.length + bucket(TTFT_BOUNDS_MS, r.ttftMs())] += 1;
            }
            if (r.requestCount() <= 1) { // an aggregated row of refusals has no duration of its own
                counters[3 + REASONS.length + BUCKETS + bucket(DURATION_BOUNDS_MS, r.durationMs())] += 1;
            }
        }
        return cells;
    }

    /** Adds {@code counters} to the cell, creating it; a cell another instance created meanwhile is added to. */
    public static void upsert(JdbcTemplate jdbc, Grain grain, Cell cell, long[] counters) {
        Object[] where = {at(cell.start()), cell.keyId(), cell.model()};
        Object[] update = new Object[COUNTERS + 3];
        for (int i = 0; i < COUNTERS; i++) {
            update[i] = counters[i];
        }
        System.arraycopy(where, 0, update, COUNTERS, 3);
        if (jdbc.update(grain.update, update) > 0) {
            return;
        }
        Object[] insert = new Object[COUNTERS + 3];
        System.arraycopy(where, 0, insert, 0, 3);
        for (int i = 0; i < COUNTERS; i++) {
            insert[3 + i] = counters[i];
        }
        try {
            jdbc.update(grain.insert, insert);
        } catch (DuplicateKeyException createdMeanwhile) {
            jdbc.update(grain.update, update);
        }
    }

    /** A part of a report's range and the cells that cover it. */
    private record Span(Grain grain, Instant from, Instant to) {
    }

    /**
     * [from, to) (whole hours) as daily cells for its whole days and hourly cells for the hours around them, or
     * all hourly when the report needs hours.
     */
    private static List<Span> spans(Instant from, Instant to, boolean hourly) {
        Instant firstDay = from.truncatedTo(ChronoUnit.DAYS);
        if (firstDay.isBefore(from)) {
            firstDay = firstDay.plus(1, ChronoUnit.DAYS);
        }
        Instant lastDay = to.truncatedTo(ChronoUnit.DAYS);
        if (hourly || !firstDay.isBefore(lastDay)) {
            return List.of(new Span(Grain.HOUR, from, to));
        }
        List<Span> spans = new ArrayList<>();
        if (from.isBefore(firstDay)) {
            spans.add(new Span(Grain.HOUR, from, firstDay));
        }
        spans.add(new Span(Grain.DAY, firstDay, lastDay));
        if (lastDay.isBefore(to)) {
            spans.add(new Span(Grain.HOUR, lastDay, to));
        }
        return spans;
    }

    /**
     * An instant as the columns' own type (TIMESTAMP WITH TIME ZONE): bound as a java.sql.Timestamp (a TIMESTAMP)
     * H2 compared converted values and scanned every cell instead of the primary key's range (30-day reports took
     * 1.6 s at 10M rows, the writer's UPDATE scanned too).
     */
    private static java.time.OffsetDateTime at(Instant instant) {
        return instant.atOffset(java.time.ZoneOffset.UTC);
    }

    static int bucket(long[] bounds, long value) {
        for (int i = 0; i < bounds.length; i++) {
            if (value <= bounds[i]) {
                return i;
            }
        }
        return bounds.length;
    }

    /**
     * The {@code q} quantile (0..1) of a histogram, interpolated within its bucket as Prometheus'
     * histogram_quantile does (the first bucket from 0, the open last bucket at its lower bound); null when empty.
     */
    static Long quantile(long[] bounds, long[] counts, double q) {
        long total = Arrays.stream(counts).sum();
        if (total == 0) {
            return null;
        }
        double rank = q * total;
        long seen = 0;
        for (int i = 0; i < counts.length; i++) {
            if (counts[i] > 0 && seen + counts[i] >= rank) {
                if (i == bounds.length) {
                    return bounds[bounds.length - 1];
                }
                long lower = i == 0 ? 0 : bounds[i - 1];
                double within = (rank - seen) / counts[i];
                return Math.round(lower + (bounds[i] - lower) * within);
            }
            seen += counts[i];
        }
        return bounds[bounds.length - 1];
    }

    /** Tokens (prompt and completion) of the key's cells from the hour holding {@code from} on. */
    long tokensSince(long keyId, Instant from) {
        Instant end = Instant.now().plus(2, ChronoUnit.DAYS).truncatedTo(ChronoUnit.DAYS);
        long sum = 0;
        for (Span span : spans(from.truncatedTo(ChronoUnit.HOURS), end, false)) {
            Long part = jdbc.queryForObject("SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM "
                    + span.grain().table + " WHERE key_id = ? AND " + span.grain().start + " >= ? AND "
                    + span.grain().start + " < ?", Long.class, keyId, at(span.from()), at(span.to()));
            sum += part == null ? 0 : part;
        }
        return sum;
    }

    /** The dimensions a report may group by: one time bucket and one of key or model, or fewer. */
    public enum Dimension { hour, day, key, model }

    /**
     * One group of a report: its dimensions' values (null when not grouped by that one) and its totals.
     * {@code endReasons} holds the reasons that occurred.
     */
    public record Group(Instant start, Long keyId, String model, long requests, long promptTokens,
            long completionTokens, long errors, Map<String, Long> endReasons, Long ttftP50Ms, Long ttftP95Ms,
            Long durationP50Ms, Long durationP95Ms, List<Cost> cost) {
    }

    /** What a group's tokens cost in one currency, by the prices of the models it holds (models without a price add nothing). */
    public record Cost(String currency, java.math.BigDecimal amount) {
    }

    /** Reasons counted as errors in reports: the request failed on the way, not by a limit or the client. */
    private static final List<EndReason> ERRORS = List.of(EndReason.upstream_error);

    /**
     * The cells of [{@code from}, {@code to}) (whole hours), filtered by key and model when given, grouped by
     * {@code dimensions} and ordered by time, then key, then model. Reads only rollup cells: one per key, model
     * and hour at most, however many requests they count.
     */
    List<Group> report(Instant from, Instant to, List<Dimension> dimensions, Long keyId, String model,
            Map<String, ModelPrices.Price> prices) {
        boolean byKey = dimensions.contains(Dimension.key);
        boolean byModel = dimensions.contains(Dimension.model);
        boolean byTime = dimensions.contains(Dimension.hour) || dimensions.contains(Dimension.day);
        boolean byDay = dimensions.contains(Dimension.day);
        Map<List<Object>, long[]> groups = new LinkedHashMap<>();
        Map<List<Object>, Map<String, java.math.BigDecimal>> costs = new LinkedHashMap<>();
        for (Span span : spans(from, to, dimensions.contains(Dimension.hour))) {
            List<String> columns = new ArrayList<>();
            if (byTime) {
                columns.add(span.grain().start);
            }
            if (byKey) {
                columns.add("key_id");
            }
            columns.add("model"); // always: a group's cost is priced per model
            String select = String.join(", ", columns) + ", " + Arrays.stream(COUNTER_COLUMNS.split(", "))
                    .map(c -> "SUM(" + c + ")").collect(Collectors.joining(", "));
            StringBuilder sql = new StringBuilder("SELECT " + select + " FROM " + span.grain().table + " WHERE "
                    + span.grain().start + " >= ? AND " + span.grain().start + " < ?");
            List<Object> args = new ArrayList<>(List.of(at(span.from()), at(span.to())));
            if (keyId != null) {
                sql.append(" AND key_id = ?");
                args.add(keyId);
            }
            if (model != null) {
                sql.append(" AND model = ?");
                args.add(StoredText.encode(model));
            }
            sql.append(" GROUP BY ").append(String.join(", ", columns));
            jdbc.query(sql.toString(), rs -> {
                int at = 1;
                Instant start = null;
                if (byTime) {
                    start = rs.getTimestamp(at++).toInstant();
                    if (byDay) {
                        start = start.truncatedTo(ChronoUnit.DAYS);
                    }
                }
                Long key = byKey ? rs.getLong(at++) : null;
                String cellModel = StoredText.decode(rs.getString(at++));
                List<Object> dims = Arrays.asList(start, key, byModel ? cellModel : null);
                long[] sums = groups.computeIfAbsent(dims, k -> new long[COUNTERS]);
                long[] cell = new long[COUNTERS];
                for (int i = 0; i < COUNTERS; i++) {
                    cell[i] = rs.getLong(at + i);
                    sums[i] += cell[i];
                }
                ModelPrices.Price price = prices.get(cellModel);
                if (price != null) {
                    costs.computeIfAbsent(dims, k -> new java.util.TreeMap<>())
                            .merge(price.currency(), price.cost(cell[1], cell[2]), java.math.BigDecimal::add);
                }
            }, args.toArray());
        }
        List<Group> out = new ArrayList<>();
        groups.forEach((dims, sums) -> out.add(group(dims, sums, costs.get(dims))));
        out.sort(java.util.Comparator.comparing(Group::start, java.util.Comparator.nullsFirst(java.util.Comparator.naturalOrder()))
                .thenComparing(Group::keyId, java.util.Comparator.nullsFirst(java.util.Comparator.naturalOrder()))
                .thenComparing(Group::model, java.util.Comparator.nullsFirst(java.util.Comparator.naturalOrder())));
        return out;
    }

    private static Group group(List<Object> dims, long[] sums, Map<String, java.math.BigDecimal> cost) {
        Map<String, Long> reasons = new LinkedHashMap<>();
        long errors = 0;
        for (EndReason reason : REASONS) {
            long n = sums[3 + reason.ordinal()];
            if (n > 0) {
                reasons.put(reason.name(), n);
            }
            if (ERRORS.contains(reason)) {
                errors += n;
            }
        }
        long[] ttft = Arrays.copyOfRange(sums, 3 + REASONS.length, 3 + REASONS.length + BUCKETS);
        long[] duration = Arrays.copyOfRange(sums, 3 + REASONS.length + BUCKETS, 3 + REASONS.length + 2 * BUCKETS);
        Long key = (Long) dims.get(1);
        String model = (String) dims.get(2);
        return new Group((Instant) dims.get(0), key == null || key == NO_KEY ? null : key,
                model == null || model.equals(NO_MODEL) ? null : model, sums[0], sums[1], sums[2], errors, reasons,
                quantile(TTFT_BOUNDS_MS, ttft, 0.5), quantile(TTFT_BOUNDS_MS, ttft, 0.95),
                quantile(DURATION_BOUNDS_MS, duration, 0.5), quantile(DURATION_BOUNDS_MS, duration, 0.95),
                cost == null ? null : cost.entrySet().stream().map(e -> new Cost(e.getKey(), e.getValue())).toList());
    }

    private static String truncate(String model) {
        return model.length() <= 200 ? model : model.substring(0, 200);
    }
}
