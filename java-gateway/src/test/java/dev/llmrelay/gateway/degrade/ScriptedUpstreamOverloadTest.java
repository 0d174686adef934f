package dev.llmrelay.gateway.degrade;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import com.fasterxml.jackson.databind.JsonNode;

import okhttp3.Response;

/**
 * Overload against a scripted slow upstream (a fake: it holds its streams until the test lets them go,
 * so the pool is full for exactly as long as the test needs): with 5x more clients than the pool's limit,
 * the gateway admits exactly the limit and sheds the rest at once with 503 + Retry-After in OpenAI's
 * shape; with a fallback route, the excess is served by the fallback pool instead.
 */
class ScriptedUpstreamOverloadTest extends DegradeTestSupport {

    @Autowired
    AdaptiveLimiter limiter;

    /** What a client saw: status, Retry-After, X-Relay-Fallback, and the whole body. */
    record Outcome(int status, String retryAfter, String fallback, String body) {
    }

    private Outcome call(String key, String model, boolean stream) throws Exception {
        try (Response response = chat(key, model, stream, null)) {
            return new Outcome(response.code(), response.header("Retry-After"), response.header("X-Relay-Fallback"),
                    response.body().string());
        }
    }

    private List<Future<Outcome>> fire(ExecutorService threads, int clients, String key, boolean stream) {
        List<Future<Outcome>> outcomes = new ArrayList<>();
        for (int i = 0; i < clients; i++) {
            boolean asStream = stream || i % 2 == 0;
            outcomes.add(threads.submit(() -> call(key, "smollm2", asStream)));
        }
        return outcomes;
    }

    private static void awaitTrue(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never happened: " + what);
            }
            Thread.sleep(10);
        }
    }

    private long shed(String pool) {
        return ((Number) limiter.snapshot().get(pool).get("shed")).longValue();
    }

    @Test
    void fiveTimesMoreClientsThanTheLimitAreShedWith503AndRetryAfterExceptTheLimit() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        PRIMARY.answer(request -> heldAnswer(release, "smollm2", "Hi"));
        String key = newKey(false);
        long shedBefore = shed("default");
        int clients = 5 * LIMIT;
        ExecutorService threads = Executors.newFixedThreadPool(clients);
        try {
            // half of them streams, half not: both are shed the same way
            List<Future<Outcome>> outcomes = fire(threads, clients, key, false);
            awaitTrue("the excess is answered while the admitted streams wait",
                    () -> outcomes.stream().filter(Future::isDone).count() == clients - LIMIT);
            awaitTrue("the admitted requests reach the upstream", () -> PRIMARY.chatRequests() == LIMIT);
            assertThat(limiter.snapshot().get("default").get("inFlight")).isEqualTo(LIMIT);
            release.countDown();

            List<Outcome> served = new ArrayList<>();
            List<Outcome> refused = new ArrayList<>();
            for (Future<Outcome> future : outcomes) {
                Outcome outcome = future.get();
                (outcome.status() == 200 ? served : refused).add(outcome);
            }
            assertThat(served).hasSize(LIMIT);
            assertThat(refused).hasSize(clients - LIMIT);
            for (Outcome outcome : refused) {
                assertThat(outcome.status()).isEqualTo(503);
                assertThat(outcome.retryAfter()).isEqualTo("1");
                JsonNode error = json.readTree(outcome.body()).path("error");
                assertThat(error.path("type").asText()).isEqualTo("server_error");
                assertThat(error.path("code").asText()).isEqualTo("overloaded");
                assertThat(error.path("message").asText()).contains("concurrency limit");
            }
            for (Outcome outcome : served) {
                assertThat(outcome.fallback()).isNull();
                assertThat(outcome.body()).contains("Hi");
            }
            assertThat(shed("default") - shedBefore).isEqualTo(clients - LIMIT);
            awaitTrue("the slots are free again", () -> limiter.snapshot().get("default").get("inFlight").equals(0));
            assertThat(PRIMARY.chatRequests()).isEqualTo(LIMIT);
        } finally {
            release.countDown();
            threads.shutdownNow();
        }
    }

    @Test
    void withAFallbackRouteTheRequestsThePoolCannotTakeAreServedByTheFallbackPool() throws Exception {
        setPolicy("{\"fallbacks\":{\"default\":\"small\"}}");
        CountDownLatch release = new CountDownLatch(1);
        PRIMARY.answer(request -> heldAnswer(release, "smollm2", "Hi"));
        String key = newKey(true);
        int clients = 2 * LIMIT; // the primary pool's limit, then the fallback pool's
        ExecutorService threads = Executors.newFixedThreadPool(clients);
        try {
            List<Future<Outcome>> outcomes = fire(threads, clients, key, false);
            awaitTrue("the fallback pool served the excess while the primary streams wait",
                    () -> outcomes.stream().filter(Future::isDone).count() == clients - LIMIT);
            // a key that does not allow fallback is shed meanwhile
            Outcome notAllowed = call(newKey(false), "smollm2", true);
            assertThat(notAllowed.status()).isEqualTo(503);
            assertThat(notAllowed.retryAfter()).isEqualTo("1");
            assertThat(notAllowed.fallback()).isNull();
            release.countDown();

            int viaFallback = 0;
            for (Future<Outcome> future : outcomes) {
                Outcome outcome = future.get();
                assertThat(outcome.status()).isEqualTo(200);
                if (outcome.fallback() != null) {
                    viaFallback++;
                    assertThat(outcome.fallback()).isEqualTo("smollm2->small");
                    assertThat(outcome.body()).contains("\"model\":\"small\"").contains("Hello");
                } else {
                    assertThat(outcome.body()).contains("\"model\":\"smollm2\"").contains("Hi");
                }
            }
            assertThat(viaFallback).isEqualTo(clients - LIMIT);
            assertThat(SMALL.chatRequests()).isEqualTo(clients - LIMIT);
            assertThat(PRIMARY.chatRequests()).isEqualTo(LIMIT);
            for (var request : SMALL.requests()) {
                assertThat(json.readTree(request.getBody().utf8()).path("model").asText()).isEqualTo("small");
            }
        } finally {
            release.countDown();
            threads.shutdownNow();
        }
    }
}
