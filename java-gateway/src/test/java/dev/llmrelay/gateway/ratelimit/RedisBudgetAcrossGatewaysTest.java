package dev.llmrelay.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.jdbc.core.simple.JdbcClient;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.support.RedisServer;
import dev.llmrelay.gateway.support.SseScript;
import dev.llmrelay.gateway.usage.UsageRecorder;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;
import okhttp3.Response;

/**
 * A token budget shared by three gateways on one real redis-server (and one database): 64 clients stream at
 * once through all three until the budget is spent. The upstreams write exactly the max_tokens they are sent,
 * the most any answer could use. Admitted tokens never pass the budget, nearly all of it is used, the key's
 * {@code used} equals its usage rows; with Redis down, fail-closed gateways refuse with 503.
 */
class RedisBudgetAcrossGatewaysTest {

    @RegisterExtension
    static final RedisServer REDIS = new RedisServer();

    private static final long BUDGET = 10_000;
    private static final int CLIENTS = 64;
    private final ObjectMapper json = new ObjectMapper();

    /** Exactly max_tokens tokens after 7 prompt tokens, paced so the 64 streams overlap. */
    private MockResponse answer(RecordedRequest request) {
        if (!request.getUrl().encodedPath().equals("/v1/chat/completions")) {
            return new MockResponse.Builder().code(404).build();
        }
        try {
            int max = json.readTree(request.getBody().utf8()).path("max_tokens").asInt();
            SseScript script = new SseScript();
            for (int i = 0; i < max; i++) {
                script.event(SseScript.chunk("r", "x", null));
                if (i % 25 == 24) {
                    script.pause(java.time.Duration.ofMillis(2));
                }
            }
            return script.event(SseScript.chunk("r", null, "length")).event(SseScript.usageChunk("r", 7, max)).done()
                    .response();
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One streamed request; its status (200, or 429 insufficient_quota; anything else is noted as unexpected). */
    private int send(FreshGateway gateway, String key, String body, AtomicLong streamedTokens,
            ConcurrentLinkedQueue<String> unexpected) {
        try (Response response = gateway.post("/v1/chat/completions", key, body)) {
            String text = response.body().string();
            if (response.code() == 200) {
                streamedTokens.addAndGet(text.split("\"content\":\"x\"", -1).length - 1);
            } else if (response.code() != 429 || !text.contains("\"insufficient_quota\"")) {
                unexpected.add(response.code() + " " + text);
            }
            return response.code();
        } catch (java.io.IOException e) {
            unexpected.add(e.toString());
            return -1;
        }
    }

    @Test
    void sixtyFourStreamsThroughThreeGatewaysNeverPassATenThousandTokenBudget() throws Exception {
        String[] shared = {"--spring.datasource.url=jdbc:h2:mem:budget-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1",
                "--gateway.limits.store=redis", "--gateway.redis.url=" + REDIS.url(), "--gateway.redis.timeout=3s",
                "--gateway.limits.on-store-failure=fail-closed"};
        List<FreshGateway> gateways = new ArrayList<>();
        ExecutorService clients = Executors.newFixedThreadPool(CLIENTS);
        try {
            for (int i = 0; i < 3; i++) {
                FreshGateway gateway = FreshGateway.start(shared);
                gateway.upstream().answer(this::answer);
                gateways.add(gateway);
            }
            // each store connects off the request path at start: the burst must not race that (fail-closed
            // would answer it 503), and a busy machine gets a long command timeout: this test is about exactness
            for (FreshGateway gateway : gateways) {
                RedisLimitStore store = (RedisLimitStore) gateway.bean(LimitStore.class);
                for (int i = 0; i < 200 && !store.connected(); i++) {
                    Thread.sleep(50);
                }
                assertThat(store.connected()).isTrue();
            }
            JsonNode created;
            try (Response response = gateways.get(0).admin("POST", "/admin/keys", "{\"name\":\"shared\","
                    + "\"requestsPerMinute\":100000,\"tokensPerMinute\":10000000,\"maxConcurrentStreams\":1000,"
                    + "\"budget\":{\"tokens\":" + BUDGET + ",\"period\":\"day\"}}")) {
                assertThat(response.code()).isEqualTo(201);
                created = json.readTree(response.body().string());
            }
            String key = created.path("key").asText();
            long id = created.path("id").asLong();

            AtomicLong streamedTokens = new AtomicLong();
            ConcurrentLinkedQueue<String> unexpected = new ConcurrentLinkedQueue<>();
            String body = "{\"stream\":true,\"max_tokens\":200,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
            // 64 clients at once, each until its first refusal; then one client on what the others gave back
            List<Future<?>> done = new ArrayList<>();
            for (int c = 0; c < CLIENTS; c++) {
                int client = c;
                done.add(clients.submit(() -> {
                    for (int attempt = 0; ; attempt++) {
                        if (send(gateways.get((client + attempt) % 3), key, body, streamedTokens, unexpected) != 200) {
                            return;
                        }
                    }
                }));
            }
            for (Future<?> future : done) {
                future.get(120, TimeUnit.SECONDS);
            }
            for (int attempt = 0; send(gateways.get(attempt % 3), key, body, streamedTokens, unexpected) == 200; attempt++) {
                assertThat(attempt).isLessThan(100);
            }
            assertThat(unexpected).isEmpty();

            gateways.forEach(g -> g.bean(UsageRecorder.class).flush());
            JdbcClient jdbc = gateways.get(0).bean(JdbcClient.class);
            long rows = jdbc.sql("SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage_record "
                    + "WHERE key_id = ?").param(id).query(Long.class).single();
            long served = jdbc.sql("SELECT COUNT(*) FROM usage_record WHERE key_id = ? AND http_status = 200")
                    .param(id).query(Long.class).single();
            JsonNode budget;
            try (Response response = gateways.get(1).admin("GET", "/admin/keys/" + id, null)) {
                budget = json.readTree(response.body().string()).path("budget");
            }
            System.out.printf("budget %d: %d tokens in %d answers (%.1f%%), used %d%n", BUDGET, rows, served,
                    100.0 * rows / BUDGET, budget.path("used").asLong());
            assertThat(rows).isLessThanOrEqualTo(BUDGET); // no overshoot
            assertThat(rows).isGreaterThanOrEqualTo(BUDGET * 95 / 100);
            assertThat(budget.path("used").asLong()).isEqualTo(rows);
            assertThat(streamedTokens.get()).isEqualTo(rows - 7 * served);

            REDIS.stop();
            try (Response response = gateways.get(2).post("/v1/chat/completions", key, body)) {
                assertThat(response.code()).isEqualTo(503);
                assertThat(response.body().string()).contains("\"limits_unavailable\"");
            } finally {
                REDIS.start();
            }
        } finally {
            clients.shutdownNow();
            gateways.forEach(FreshGateway::close);
        }
    }
}
