package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.ScriptedUpstream;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * Routing by each replica's own load: the two scripted upstreams (fakes, to set their queue depths)
 * export vLLM's metric names on /metrics, as {@code vllm serve} does. Scraping is off in tests, so the
 * test runs each scrape round itself and waits until the pool holds the values it set.
 */
class LoadAwareRoutingTest extends GatewayTestSupport {

    @Autowired
    UpstreamLoadScraper scraper;

    private final AtomicInteger waitingA = new AtomicInteger();
    private final AtomicInteger waitingB = new AtomicInteger();

    @AfterEach
    void forgetLoads() {
        for (Upstream upstream : pool.upstreams()) {
            upstream.load(null);
        }
    }

    /** A replica that answers chats and reports {@code waiting} queued and 2 running requests, vLLM style. */
    private static void vllmLike(ScriptedUpstream upstream, AtomicInteger waiting) {
        upstream.answer(r -> switch (r.getUrl().encodedPath()) {
            case "/metrics" -> new MockResponse.Builder().body("""
                    # HELP vllm:num_requests_waiting Number of requests waiting to be processed.
                    # TYPE vllm:num_requests_waiting gauge
                    vllm:num_requests_waiting{engine="0",model_name="smollm2"} %d.0
                    # HELP vllm:num_requests_running Number of requests in model execution batches.
                    # TYPE vllm:num_requests_running gauge
                    vllm:num_requests_running{engine="0",model_name="smollm2"} 2.0
                    # TYPE vllm:kv_cache_usage_perc gauge
                    vllm:kv_cache_usage_perc{engine="0",model_name="smollm2"} 0.25
                    """.formatted(waiting.get())).build();
            case "/v1/chat/completions" -> SseScript.answer("r", 2, "fine").response();
            default -> new MockResponse.Builder().code(404).build();
        });
    }

    /** A llama-server replica ({@code --metrics}): deferred requests wait for a free slot. */
    private static void llamaServerLike(ScriptedUpstream upstream, AtomicInteger deferred) {
        upstream.answer(r -> switch (r.getUrl().encodedPath()) {
            case "/metrics" -> new MockResponse.Builder().body("""
                    # HELP llamacpp:requests_processing Number of requests processing
                    # TYPE llamacpp:requests_processing gauge
                    llamacpp:requests_processing 4
                    # HELP llamacpp:requests_deferred Number of requests deferred
                    # TYPE llamacpp:requests_deferred gauge
                    llamacpp:requests_deferred %d
                    """.formatted(deferred.get())).build();
            case "/v1/chat/completions" -> SseScript.answer("r", 2, "fine").response();
            default -> new MockResponse.Builder().code(404).build();
        });
    }

    private void scrape() throws InterruptedException {
        for (Upstream upstream : pool.upstreams()) {
            upstream.load(null);
        }
        scraper.scrapeAll();
        Upstream a = pool.upstreams().get(0);
        Upstream b = pool.upstreams().get(1);
        awaitTrue("both replicas' loads scraped", () -> waiting(a) == waitingA.get() && waiting(b) == waitingB.get());
    }

    private static int waiting(Upstream upstream) {
        UpstreamLoad load = upstream.load(System.nanoTime(), Long.MAX_VALUE);
        return load == null ? -1 : load.waiting();
    }

    private void send(String key, String extra, String requestId) throws Exception {
        try (Response response = client.newCall(chat(key, chatBody(true, extra), requestId).build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(dataEvents(lines(response))).last().isEqualTo("[DONE]");
        }
    }

    @Test
    void newRequestsGoToTheIdleReplica() throws Exception {
        waitingA.set(6);
        waitingB.set(0);
        vllmLike(UPSTREAM_A, waitingA);
        vllmLike(UPSTREAM_B, waitingB);
        scrape();
        try (Response metrics = client.newCall(new Request.Builder().url(url("/actuator/prometheus")).build())
                .execute()) {
            assertThat(metrics.body().string().lines()
                    .filter(l -> l.startsWith("gateway_upstream_waiting{") || l.startsWith("gateway_upstream_running{")))
                    .anySatisfy(l -> assertThat(l).startsWith("gateway_upstream_waiting{")
                            .contains("upstream=\"" + UPSTREAM_A.baseUrl() + "\"").endsWith(" 6.0"))
                    .anySatisfy(l -> assertThat(l).startsWith("gateway_upstream_running{")
                            .contains("upstream=\"" + UPSTREAM_B.baseUrl() + "\"").endsWith(" 2.0"));
        }
        String key = newKey();
        for (int i = 0; i < 4; i++) {
            send(key, null, "idle-" + i);
        }
        assertThat(UPSTREAM_A.chatRequests()).isZero();
        assertThat(UPSTREAM_B.chatRequests()).isEqualTo(4);

        // the queue moves: now B is the busy one
        waitingA.set(0);
        waitingB.set(6);
        scrape();
        for (int i = 0; i < 4; i++) {
            send(key, null, "idle-again-" + i);
        }
        assertThat(UPSTREAM_A.chatRequests()).isEqualTo(4);
        assertThat(UPSTREAM_B.chatRequests()).isEqualTo(4);
    }

    @Test
    void aLlamaServerReplicaBesideAVllmOneGetsTheRequestsWhileItIsTheLessLoaded() throws Exception {
        waitingA.set(0);
        waitingB.set(5);
        llamaServerLike(UPSTREAM_A, waitingA);
        vllmLike(UPSTREAM_B, waitingB);
        scrape();
        String key = newKey();
        for (int i = 0; i < 3; i++) {
            send(key, null, "llama-idle-" + i);
        }
        assertThat(UPSTREAM_A.chatRequests()).isEqualTo(3);
        assertThat(UPSTREAM_B.chatRequests()).isZero();

        waitingA.set(8); // its slots are full and requests queue
        waitingB.set(0);
        scrape();
        for (int i = 0; i < 3; i++) {
            send(key, null, "llama-busy-" + i);
        }
        assertThat(UPSTREAM_A.chatRequests()).isEqualTo(3);
        assertThat(UPSTREAM_B.chatRequests()).isEqualTo(3);
    }

    @Test
    void aUsersTurnsStayOnOneReplicaUntilItIsOverloaded() throws Exception {
        vllmLike(UPSTREAM_A, waitingA);
        vllmLike(UPSTREAM_B, waitingB);
        scrape();
        String key = newKey();
        send(key, "\"user\":\"alice\"", "alice-1"); // alice's home (rendezvous hashing, the same on every instance)
        boolean onA = UPSTREAM_A.chatRequests() == 1;
        ScriptedUpstream home = onA ? UPSTREAM_A : UPSTREAM_B;
        ScriptedUpstream other = onA ? UPSTREAM_B : UPSTREAM_A;
        AtomicInteger homeWaiting = onA ? waitingA : waitingB;

        // home busier than the other but not overloaded (3 waiting, the limit is 4): alice stays,
        // requests without a user go to the other
        homeWaiting.set(3);
        scrape();
        send(key, "\"user\":\"alice\"", "alice-2");
        send(key, null, "anonymous-1");
        send(key, "\"user\":\"alice\"", "alice-3");
        assertThat(home.chatRequests()).isEqualTo(3);
        assertThat(other.chatRequests()).isEqualTo(1);

        // home overloaded (5 waiting): alice moves to the other, and back home once it has recovered
        homeWaiting.set(5);
        scrape();
        send(key, "\"user\":\"alice\"", "alice-4");
        assertThat(other.chatRequests()).isEqualTo(2);
        homeWaiting.set(0);
        scrape();
        send(key, "\"user\":\"alice\"", "alice-5");
        assertThat(home.chatRequests()).isEqualTo(4);
        assertThat(other.chatRequests()).isEqualTo(2);
    }

    @Test
    void withoutMetricsThePoolBalancesOnInFlightCallsAndIgnoresAffinity() throws Exception {
        // the scripted upstreams answer /metrics with 404 (not exported): loads stay unknown
        UPSTREAM_A.answer(r -> r.getUrl().encodedPath().equals("/v1/chat/completions")
                ? SseScript.answer("r", 2, "fine").response() : new MockResponse.Builder().code(404).build());
        UPSTREAM_B.answer(r -> r.getUrl().encodedPath().equals("/v1/chat/completions")
                ? SseScript.answer("r", 2, "fine").response() : new MockResponse.Builder().code(404).build());
        scraper.scrapeAll();
        awaitTrue("both scrapes answered", () -> UPSTREAM_A.requests().size() == 1 && UPSTREAM_B.requests().size() == 1);
        String key = newKey();
        for (int i = 0; i < 4; i++) {
            send(key, "\"user\":\"bob\"", "plain-" + i);
        }
        assertThat(pool.upstreams()).allSatisfy(u -> assertThat(u.load(System.nanoTime(), Long.MAX_VALUE)).isNull());
        // one call at a time, so both are at 0 in flight: ties rotate, as before load-aware routing
        assertThat(UPSTREAM_A.chatRequests()).isEqualTo(2);
        assertThat(UPSTREAM_B.chatRequests()).isEqualTo(2);
    }

    @Test
    void aBrowserConversationsTurnsStayOnOneReplicaUntilItIsOverloaded() throws Exception {
        vllmLike(UPSTREAM_A, waitingA);
        vllmLike(UPSTREAM_B, waitingB);
        scrape();
        String cookie = signIn(newKey());
        JsonNode first = sendTurn(cookie, null);
        String conversation = first.path("conversationId").asText();
        boolean onA = UPSTREAM_A.chatRequests() == 1;
        ScriptedUpstream home = onA ? UPSTREAM_A : UPSTREAM_B;
        ScriptedUpstream other = onA ? UPSTREAM_B : UPSTREAM_A;
        AtomicInteger homeWaiting = onA ? waitingA : waitingB;

        homeWaiting.set(3); // busier than the other, not overloaded
        scrape();
        sendTurn(cookie, conversation);
        sendTurn(cookie, conversation);
        assertThat(home.chatRequests()).isEqualTo(3);
        assertThat(other.chatRequests()).isZero();

        homeWaiting.set(5); // overloaded: the conversation moves
        scrape();
        sendTurn(cookie, conversation);
        assertThat(other.chatRequests()).isEqualTo(1);
        assertThat(home.chatRequests()).isEqualTo(3);
    }

    private String signIn(String key) throws Exception {
        try (Response response = client.newCall(new Request.Builder().url(url("/api/session"))
                .post(RequestBody.create("{\"apiKey\":\"" + key + "\"}", JSON)).build()).execute()) {
            assertThat(response.code()).isEqualTo(204);
            return response.header("Set-Cookie").split(";", 2)[0];
        }
    }

    /** One turn of the browser API, read to its end (the next turn waits for the reply). */
    private JsonNode sendTurn(String cookie, String conversationId) throws Exception {
        ObjectMapper json = new ObjectMapper();
        var body = json.createObjectNode().put("content", "Hello again");
        if (conversationId != null) {
            body.put("conversationId", conversationId);
        }
        JsonNode sent;
        try (Response response = client.newCall(new Request.Builder().url(url("/api/chat/messages"))
                .header("Cookie", cookie).post(RequestBody.create(body.toString(), JSON)).build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            sent = json.readTree(response.body().string());
        }
        try (Response stream = client.newCall(new Request.Builder()
                .url(url("/api/chat/messages/" + sent.path("messageId").asText() + "/stream"))
                .header("Cookie", cookie).build()).execute()) {
            if (stream.code() != 204) { // 204: the reply already ended
                assertThat(stream.body().string()).contains("event: finish");
            }
        }
        return sent;
    }
}
