package dev.llmrelay.gateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges;
import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import okhttp3.Request;
import okhttp3.Response;

/**
 * Many requests of one key at once, streamed and not: every one gets exactly one usage row with its
 * tokens, and the admin totals add up. Runs on H2 and on PostgreSQL.
 */
class ConcurrentUsageRowsTest extends GatewayTestSupport {

    private static final int REQUESTS = 64;

    private final ExecutorService threads = Executors.newFixedThreadPool(16);
    private final ObjectMapper json = new ObjectMapper();

    @AfterEach
    void stopThreads() {
        threads.shutdownNow();
    }

    @Test
    void everyConcurrentRequestWritesOneExactUsageRow() throws Exception {
        UPSTREAM_A.answer(r -> SseScript.answer("u", 11, "a", "b", "c").response());
        UPSTREAM_B.answer(r -> SseScript.answer("u", 11, "a", "b", "c").response());
        var created = keys.create(new KeyChanges("many", 1000, 1_000_000, REQUESTS, null));
        CountDownLatch go = new CountDownLatch(1);
        List<Future<Integer>> statuses = new ArrayList<>();
        for (int i = 0; i < REQUESTS; i++) {
            boolean stream = i % 2 == 0;
            String requestId = "concurrent-usage-" + i;
            statuses.add(threads.submit(() -> {
                go.await();
                try (Response response = client.newCall(chat(created.plaintext(), chatBody(stream, null), requestId)
                        .build()).execute()) {
                    response.body().string();
                    return response.code();
                }
            }));
        }
        go.countDown();
        for (Future<Integer> status : statuses) {
            assertThat(status.get(60, TimeUnit.SECONDS)).isEqualTo(200);
        }
        for (int i = 0; i < REQUESTS; i++) {
            Map<String, Object> row = usageRow("concurrent-usage-" + i);
            assertThat(row).as("request " + i).containsEntry("prompt_tokens", 11).containsEntry("completion_tokens", 3)
                    .containsEntry("end_reason", "stop").containsEntry("streamed", i % 2 == 0);
        }
        assertThat(jdbc.sql("SELECT COUNT(*) FROM usage_record WHERE key_id = ?").param(created.key().id())
                .query(Long.class).single()).isEqualTo(REQUESTS);
        try (Response response = client.newCall(new Request.Builder()
                .url(url("/admin/usage?keyId=" + created.key().id()))
                .header("Authorization", "Bearer test-admin-token").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            JsonNode totals = json.readTree(response.body().string()).path("keys").path(0);
            assertThat(totals.path("requests").asLong()).isEqualTo(REQUESTS);
            assertThat(totals.path("promptTokens").asLong()).isEqualTo(11L * REQUESTS);
            assertThat(totals.path("completionTokens").asLong()).isEqualTo(3L * REQUESTS);
        }
    }
}
