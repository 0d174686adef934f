package dev.llmrelay.gateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import okhttp3.ConnectionPool;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/**
 * Requests refused before a key is known (401) must not write a row each: a flood of bad keys would
 * fill the usage table. They are counted per endpoint and written as one aggregated row per flush.
 */
class UnauthenticatedUsageTest extends GatewayTestSupport {

    @Autowired
    UsageRecorder usage;

    // Its own connections, never retried: a request OkHttp silently re-sent on a pooled connection an earlier
    // test left half-closed would be refused, and counted, twice
    private final OkHttpClient once = new OkHttpClient.Builder().connectionPool(new ConnectionPool())
            .retryOnConnectionFailure(false).build();

    private int send(Request.Builder request, String requestId) throws Exception {
        try (Response response = once.newCall(request.header("X-Request-Id", requestId).build()).execute()) {
            return response.code();
        }
    }

    private long nullKeyRequests() {
        return usage.totals(java.time.Instant.EPOCH, java.time.Instant.now().plusSeconds(60), null).stream()
                .filter(t -> t.keyId() == null).mapToLong(UsageRepository.KeyTotals::requests).sum();
    }

    private static int sum(List<Map<String, Object>> rows, String endpoint) {
        return rows.stream().filter(r -> endpoint.equals(r.get("endpoint")))
                .mapToInt(r -> ((Number) r.get("request_count")).intValue()).sum();
    }

    @Test
    void unauthenticatedRequestsAreCountedIntoOneRowPerEndpointInsteadOfOneRowEach() throws Exception {
        usage.flushUnauthenticated(); // what earlier tests left
        long lastId = jdbc.sql("SELECT COALESCE(MAX(id), 0) FROM usage_record").query(Long.class).single();
        long totalsBefore = nullKeyRequests();

        List<String> ids = List.of("unauth-chat-1", "unauth-chat-2", "unauth-chat-3", "unauth-models-1",
                "unauth-models-2");
        assertThat(send(chat(null, chatBody(false, null), ids.get(0)), ids.get(0))).isEqualTo(401);
        assertThat(send(chat("sk-relay-wrong", chatBody(true, null), ids.get(1)), ids.get(1))).isEqualTo(401);
        assertThat(send(chat(null, "not json", ids.get(2)), ids.get(2))).isEqualTo(401);
        for (String id : ids.subList(3, 5)) {
            assertThat(send(new Request.Builder().url(url("/v1/models")), id)).isEqualTo(401);
        }
        for (String id : ids) {
            assertThat(jdbc.sql("SELECT COUNT(*) FROM usage_record WHERE request_id = ?").param(id)
                    .query(Long.class).single()).as("rows of " + id).isZero();
        }

        // flushed until all five show (a scheduled flush can take some first; the request threads may still be
        // finishing when the client has its 401): the sums below are exact either way
        List<Map<String, Object>> rows = List.of();
        for (int attempt = 0; attempt < 200 && sum(rows, "chat.completions") + sum(rows, "models") < 5; attempt++) {
            if (attempt > 0) {
                Thread.sleep(25);
            }
            usage.flushUnauthenticated();
            rows = jdbc.sql("SELECT * FROM usage_record WHERE id > ? ORDER BY id").param(lastId).query().listOfRows();
        }
        assertThat(rows).isNotEmpty().allSatisfy(row -> {
            assertThat(row.get("key_id")).isNull();
            assertThat(row.get("usage_source")).isEqualTo("aggregated");
            assertThat(row.get("end_reason")).isEqualTo("unauthorized");
            assertThat(row.get("http_status")).isEqualTo(401);
            assertThat(row.get("endpoint")).isIn("chat.completions", "models");
        });
        // a scheduled flush may have run in between and split a count over two rows: the sums are exact
        assertThat(sum(rows, "chat.completions")).isEqualTo(3);
        assertThat(sum(rows, "models")).isEqualTo(2);
        assertThat(nullKeyRequests()).isEqualTo(totalsBefore + 5);

        long afterFlush = jdbc.sql("SELECT COALESCE(MAX(id), 0) FROM usage_record").query(Long.class).single();
        usage.flushUnauthenticated(); // nothing new was refused: nothing is written
        assertThat(jdbc.sql("SELECT COALESCE(MAX(id), 0) FROM usage_record").query(Long.class).single())
                .isEqualTo(afterFlush);
    }
}
