package dev.llmrelay.gateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.usage.UsageRollups.Dimension;
import dev.llmrelay.gateway.usage.UsageRollups.Group;
import okhttp3.Response;

/**
 * The hourly rollups against the request rows they sum (property test over random request mixes, written
 * through the real writer into a fresh gateway's database), and the report API over them.
 */
class UsageRollupsTest {

    @RegisterExtension
    final FreshGateway.PerTest gateway = FreshGateway.perTest(1);

    private final ObjectMapper json = new ObjectMapper();
    private static final Instant T0 = Instant.parse("2026-11-02T00:00:00Z");

    private static List<UsageRecord> randomMix(long seed, int n) {
        Random random = new Random(seed);
        Long[] keys = {1L, 2L, 3L, 4L, null};
        String[] models = {"smollm2", "qwen", "Qwen/Qwen2.5-7B-Instruct", null};
        EndReason[] reasons = EndReason.values();
        List<UsageRecord> records = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Long key = keys[random.nextInt(keys.length)];
            Instant at = T0.plusSeconds(random.nextInt(72 * 3600));
            Long ttft = random.nextInt(4) == 0 ? null : (long) random.nextInt(70_000);
            int count = key == null && random.nextInt(3) == 0 ? 1 + random.nextInt(20) : 1;
            records.add(new UsageRecord("r" + seed + "-" + i, key, "chat.completions", null,
                    models[random.nextInt(models.length)], random.nextBoolean(), random.nextInt(2000),
                    random.nextInt(3000), "reported", reasons[random.nextInt(reasons.length)], 200, ttft,
                    random.nextInt(4_000_000), at, count));
        }
        return records;
    }

    /** The expected report computed straight from the records. */
    private static Map<List<Object>, long[]> expected(List<UsageRecord> records, List<Dimension> dims) {
        Map<List<Object>, long[]> out = new HashMap<>();
        for (UsageRecord r : records) {
            Instant start = dims.contains(Dimension.hour) ? r.createdAt().truncatedTo(ChronoUnit.HOURS)
                    : dims.contains(Dimension.day) ? r.createdAt().truncatedTo(ChronoUnit.DAYS) : null;
            List<Object> key = Arrays.asList(start, dims.contains(Dimension.key) ? r.keyId() : null,
                    dims.contains(Dimension.model) ? r.model() : null);
            long[] sums = out.computeIfAbsent(key, k -> new long[4]);
            sums[0] += r.requestCount();
            sums[1] += r.promptTokens();
            sums[2] += r.completionTokens();
            sums[3] += r.endReason() == EndReason.upstream_error ? r.requestCount() : 0;
        }
        return out;
    }

    @Test
    void rollupTotalsEqualTheRowsForEveryGroupingOfRandomMixes() {
        UsageWriter writer = gateway.get().bean(UsageWriter.class);
        UsageRollups rollups = gateway.get().bean(UsageRollups.class);
        List<UsageRecord> all = new ArrayList<>();
        for (long round = 1; round <= 3; round++) {
            long seed = round;
            List<UsageRecord> mix = randomMix(seed, 1500);
            mix.forEach(writer::write);
            writer.flush();
            all.addAll(mix);
            for (List<Dimension> dims : List.of(List.<Dimension>of(), List.of(Dimension.key), List.of(Dimension.model),
                    List.of(Dimension.hour), List.of(Dimension.day, Dimension.key), List.of(Dimension.hour, Dimension.model),
                    List.of(Dimension.day, Dimension.model))) {
                List<Group> report = rollups.report(T0, T0.plus(3, ChronoUnit.DAYS), dims, null, null, Map.of());
                Map<List<Object>, long[]> got = new HashMap<>();
                for (Group g : report) {
                    got.put(Arrays.asList(g.start(), g.keyId(), g.model()),
                            new long[] {g.requests(), g.promptTokens(), g.completionTokens(), g.errors()});
                    assertThat(g.endReasons().values().stream().mapToLong(Long::longValue).sum()).isEqualTo(g.requests());
                }
                Map<List<Object>, long[]> want = expected(all, dims);
                assertThat(got.keySet()).as("seed %d, %s", seed, dims).isEqualTo(want.keySet());
                want.forEach((k, v) -> assertThat(got.get(k)).as("seed %d, %s, %s", seed, dims, k).containsExactly(v));
            }
        }
        // a filter on one key and one model reads only their cells
        List<Group> one = rollups.report(T0, T0.plus(3, ChronoUnit.DAYS), List.of(Dimension.hour), 2L, "qwen", Map.of());
        long requests = all.stream().filter(r -> Objects.equals(r.keyId(), 2L) && "qwen".equals(r.model()))
                .mapToLong(UsageRecord::requestCount).sum();
        assertThat(one.stream().mapToLong(Group::requests).sum()).isEqualTo(requests);
        assertThat(gateway.get().bean(UsageRecorder.class).tokensSince(3L, T0.plus(1, ChronoUnit.DAYS)))
                .isEqualTo(all.stream().filter(r -> Objects.equals(r.keyId(), 3L)
                        && !r.createdAt().isBefore(T0.plus(1, ChronoUnit.DAYS))).mapToLong(UsageRecord::totalTokens).sum());
    }

    @Test
    void theMigrationFillsTheRollupsFromRowsWrittenBeforeThem() throws Exception {
        List<UsageRecord> mix = randomMix(7, 1200);
        UsageRepository rows = gateway.get().bean(UsageRepository.class);
        rows.insertAll(mix); // as a gateway before V68 wrote them: rows without rollups
        UsageRollups rollups = gateway.get().bean(UsageRollups.class);
        List<Dimension> dims = List.of(Dimension.hour, Dimension.model);
        assertThat(rollups.report(T0, T0.plus(3, ChronoUnit.DAYS), dims, null, null, Map.of())).isEmpty();
        javax.sql.DataSource data = gateway.get().bean(javax.sql.DataSource.class);
        try (java.sql.Connection connection = data.getConnection()) {
            RollupBackfills.run(connection);
        }
        for (List<Dimension> grouping : List.of(dims, List.of(Dimension.day, Dimension.key), List.of(Dimension.model))) {
            assertReportMatches(rollups, mix, grouping, T0, T0.plus(3, ChronoUnit.DAYS));
        }
    }

    /** The report of [from, to) (whole hours) equals the records of that range, grouped the same way. */
    private static void assertReportMatches(UsageRollups rollups, List<UsageRecord> records, List<Dimension> dims,
            Instant from, Instant to) {
        Map<List<Object>, long[]> got = new HashMap<>();
        for (Group g : rollups.report(from, to, dims, null, null, Map.of())) {
            got.put(Arrays.asList(g.start(), g.keyId(), g.model()),
                    new long[] {g.requests(), g.promptTokens(), g.completionTokens(), g.errors()});
        }
        List<UsageRecord> inRange = records.stream()
                .filter(r -> !r.createdAt().isBefore(from) && r.createdAt().isBefore(to)).toList();
        Map<List<Object>, long[]> want = expected(inRange, dims);
        assertThat(got.keySet()).as("%s %s..%s", dims, from, to).isEqualTo(want.keySet());
        want.forEach((k, v) -> assertThat(got.get(k)).as("%s %s", dims, k).containsExactly(v));
    }

    @Test
    void aRangeThatIsNotWholeDaysReadsHoursAroundTheDays() {
        UsageWriter writer = gateway.get().bean(UsageWriter.class);
        List<UsageRecord> mix = randomMix(11, 2000);
        mix.forEach(writer::write);
        writer.flush();
        UsageRollups rollups = gateway.get().bean(UsageRollups.class);
        Instant from = T0.plus(5, ChronoUnit.HOURS);
        Instant to = T0.plus(50, ChronoUnit.HOURS); // 19 hours, a whole day, 2 hours
        for (List<Dimension> dims : List.of(List.<Dimension>of(), List.of(Dimension.key), List.of(Dimension.day,
                Dimension.model), List.of(Dimension.hour, Dimension.key))) {
            assertReportMatches(rollups, mix, dims, from, to);
        }
        assertReportMatches(rollups, mix, List.of(Dimension.model), T0.plus(3, ChronoUnit.HOURS), T0.plus(9, ChronoUnit.HOURS));
        long since = all(mix, 2L, T0.plus(30, ChronoUnit.HOURS));
        assertThat(gateway.get().bean(UsageRecorder.class).tokensSince(2L, T0.plus(30, ChronoUnit.HOURS))).isEqualTo(since);
    }

    private static long all(List<UsageRecord> records, long keyId, Instant from) {
        return records.stream().filter(r -> Objects.equals(r.keyId(), keyId) && !r.createdAt().isBefore(from))
                .mapToLong(UsageRecord::totalTokens).sum();
    }

    @Test
    void rowsPastTheRetentionArePrunedInBatchesAndTheRollupsStay() {
        UsageWriter writer = gateway.get().bean(UsageWriter.class);
        Instant now = Instant.now();
        int old = UsagePruner.BATCH + 500; // more than one batch
        for (int i = 0; i < old; i++) {
            writer.write(new UsageRecord("old" + i, 9L, "chat.completions", null, "m", true, 1, 1, "reported",
                    EndReason.stop, 200, null, 10, now.minus(java.time.Duration.ofDays(91)), 1));
        }
        writer.write(new UsageRecord("new", 9L, "chat.completions", null, "m", true, 1, 1, "reported", EndReason.stop,
                200, null, 10, now.minus(java.time.Duration.ofDays(89)), 1));
        writer.flush();
        assertThat(gateway.get().bean(UsagePruner.class).prune()).isEqualTo(old);
        org.springframework.jdbc.core.simple.JdbcClient jdbc = gateway.get().bean(org.springframework.jdbc.core.simple.JdbcClient.class);
        assertThat(jdbc.sql("SELECT request_id FROM usage_record WHERE key_id = 9").query(String.class).list())
                .containsExactly("new");
        assertThat(gateway.get().bean(UsageRecorder.class).tokensSince(9L, now.minus(java.time.Duration.ofDays(100))))
                .isEqualTo(2L * (old + 1)); // the rollups still hold them all
    }

    @Test
    void percentilesComeFromTheHistogramBucketThatHoldsThem() {
        long[] counts = new long[UsageRollups.BUCKETS];
        // 100 first tokens: 50 at 10 ms (bucket <= 25), 45 at 300 ms (<= 350), 5 at 4 s (<= 5000)
        counts[UsageRollups.bucket(UsageRollups.TTFT_BOUNDS_MS, 10)] += 50;
        counts[UsageRollups.bucket(UsageRollups.TTFT_BOUNDS_MS, 300)] += 45;
        counts[UsageRollups.bucket(UsageRollups.TTFT_BOUNDS_MS, 4000)] += 5;
        assertThat(UsageRollups.quantile(UsageRollups.TTFT_BOUNDS_MS, counts, 0.5)).isEqualTo(25);
        assertThat(UsageRollups.quantile(UsageRollups.TTFT_BOUNDS_MS, counts, 0.95)).isEqualTo(350);
        assertThat(UsageRollups.quantile(UsageRollups.TTFT_BOUNDS_MS, counts, 0.99)).isBetween(3000L, 5000L);
        assertThat(UsageRollups.quantile(UsageRollups.TTFT_BOUNDS_MS, new long[UsageRollups.BUCKETS], 0.5)).isNull();
        long[] slow = new long[UsageRollups.BUCKETS];
        slow[UsageRollups.BUCKETS - 1] = 3; // past the last bound: reported at it
        assertThat(UsageRollups.quantile(UsageRollups.TTFT_BOUNDS_MS, slow, 0.5)).isEqualTo(60_000);
    }

    @Test
    void everyMalformedPriceIs400AndChangesNothing() throws Exception {
        try (Response put = gateway.get().admin("PUT", "/admin/prices/models/qwen",
                "{\"inputPerMillion\":0.5,\"outputPerMillion\":1.5,\"currency\":\"USD\"}")) {
            assertThat(put.code()).isEqualTo(200);
        }
        for (String bad : List.of("{\"inputPerMillion\":-1,\"outputPerMillion\":1,\"currency\":\"USD\"}",
                "{\"inputPerMillion\":0.1234567,\"outputPerMillion\":1,\"currency\":\"USD\"}",
                "{\"inputPerMillion\":\"1\",\"outputPerMillion\":1,\"currency\":\"USD\"}",
                "{\"inputPerMillion\":1,\"outputPerMillion\":1e12,\"currency\":\"USD\"}",
                "{\"inputPerMillion\":1,\"outputPerMillion\":1,\"currency\":\"usd\"}",
                "{\"inputPerMillion\":1,\"outputPerMillion\":1}",
                "{\"inputPerMillion\":1,\"outputPerMillion\":1,\"currency\":\"USD\",\"perImage\":2}",
                "[1,1,\"USD\"]")) {
            try (Response response = gateway.get().admin("PUT", "/admin/prices/models/qwen", bad)) {
                assertThat(response.code()).as(bad).isEqualTo(400);
                assertThat(response.header("Content-Type")).as(bad).startsWith("application/problem+json");
            }
        }
        try (Response response = gateway.get().admin("GET", "/admin/prices", null)) {
            JsonNode prices = json.readTree(response.body().string()).path("prices");
            assertThat(prices).hasSize(1);
            assertThat(prices.get(0).path("model").asText()).isEqualTo("qwen");
            assertThat(prices.get(0).path("inputPerMillion").decimalValue()).isEqualByComparingTo("0.5");
            assertThat(prices.get(0).path("currency").asText()).isEqualTo("USD");
        }
        try (Response gone = gateway.get().admin("DELETE", "/admin/prices/models/qwen", null)) {
            assertThat(gone.code()).isEqualTo(204);
        }
        try (Response again = gateway.get().admin("DELETE", "/admin/prices/models/qwen", null)) {
            assertThat(again.code()).isEqualTo(404);
        }
    }

    @Test
    void everyEndReasonHasItsColumn() {
        for (EndReason reason : EndReason.values()) {
            assertThat(UsageRollups.COUNTER_COLUMNS).contains("e_" + reason.name());
        }
    }

    private JsonNode report(String query, int status) throws Exception {
        try (Response response = gateway.get().admin("GET", "/admin/usage?" + query, null)) {
            String body = response.body().string();
            assertThat(response.code()).as(body).isEqualTo(status);
            return json.readTree(body);
        }
    }

    @Test
    void theReportApiGroupsPagesAndPricesFromTheRollups() throws Exception {
        UsageWriter writer = gateway.get().bean(UsageWriter.class);
        Instant hour = Instant.parse("2026-12-01T10:00:00Z");
        for (int i = 0; i < 30; i++) {
            writer.write(new UsageRecord("p" + i, 1L, "chat.completions", null, i % 3 == 0 ? "qwen" : "smollm2", true,
                    1000, 2000, "reported", i == 0 ? EndReason.upstream_error : EndReason.stop, 200, 100L + i, 900,
                    hour.plusSeconds(i * 600L), 1)); // 30 requests over 5 hours
        }
        try (Response put = gateway.get().admin("PUT", "/admin/prices/models/qwen",
                "{\"inputPerMillion\":0.5,\"outputPerMillion\":1.5,\"currency\":\"USD\"}")) {
            assertThat(put.code()).isEqualTo(200);
        }
        JsonNode byHour = report("from=2026-12-01T10:30:00Z&to=2026-12-01T15:10:00Z&groupBy=hour,model&limit=4", 200);
        assertThat(byHour.path("from").asText()).isEqualTo("2026-12-01T10:00:00Z"); // widened to whole hours
        assertThat(byHour.path("to").asText()).isEqualTo("2026-12-01T16:00:00Z");
        assertThat(byHour.path("groupBy").toString()).isEqualTo("[\"hour\",\"model\"]");
        JsonNode first = byHour.path("groups").get(0);
        assertThat(first.path("start").asText()).isEqualTo("2026-12-01T10:00:00Z");
        assertThat(first.path("model").asText()).isEqualTo("qwen");
        assertThat(first.path("requests").asLong()).isEqualTo(2); // i = 0 and 3
        assertThat(first.path("errors").asLong()).isEqualTo(1);
        assertThat(first.path("endReasons").toString()).isEqualTo("{\"stop\":1,\"upstream_error\":1}");
        assertThat(first.path("cost").get(0).path("currency").asText()).isEqualTo("USD");
        assertThat(first.path("cost").get(0).path("amount").decimalValue())
                .isEqualByComparingTo("0.007"); // 2 x (1000 x 0.5 + 2000 x 1.5) / 1e6
        assertThat(byHour.path("groups").get(1).has("cost")).isFalse(); // smollm2 has no price
        List<String> pages = new ArrayList<>();
        JsonNode page = byHour;
        int groups = 0;
        while (true) {
            groups += page.path("groups").size();
            if (page.path("next").isNull()) {
                break;
            }
            pages.add(page.path("next").asText());
            page = report("from=2026-12-01T10:30:00Z&to=2026-12-01T15:10:00Z&groupBy=hour,model&limit=4&page="
                    + page.path("next").asText(), 200);
        }
        assertThat(groups).isEqualTo(10); // 5 hours x 2 models
        assertThat(pages).hasSize(2);

        JsonNode byKey = report("from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z&groupBy=key", 200);
        assertThat(byKey.path("groups").get(0).path("keyId").asLong()).isEqualTo(1);
        assertThat(byKey.path("groups").get(0).path("requests").asLong()).isEqualTo(30);
        assertThat(byKey.path("groups").get(0).path("ttftP50Ms").asLong()).isBetween(100L, 200L);
        assertThat(byKey.path("groups").get(0).path("cost").get(0).path("amount").decimalValue())
                .isEqualByComparingTo("0.035"); // the 10 qwen requests

        for (String bad : List.of("groupBy=week", "groupBy=hour,day", "groupBy=key,model", "groupBy=key,key",
                "groupBy=hour&limit=0", "groupBy=hour&limit=1001", "groupBy=hour&page=xyz", "model=qwen", "groupBy=")) {
            assertThat(report(bad, 400).path("status").asInt()).as(bad).isEqualTo(400);
        }
    }
}
