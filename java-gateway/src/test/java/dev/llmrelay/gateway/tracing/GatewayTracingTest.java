package dev.llmrelay.gateway.tracing;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.springframework.mock.env.MockEnvironment;

import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.support.SseScript;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.EventData;
import io.opentelemetry.sdk.trace.data.SpanData;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * The gateway's spans, with an in-memory exporter and scripted upstreams of the test's own: the caller's trace
 * continued, the attempt's context sent upstream as traceparent, failover as sibling attempts, content-filter hits
 * as events; with tracing off no span and no traceparent.
 */
class GatewayTracingTest {

    private static final MediaType JSON = MediaType.get("application/json");
    private static final String TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
    private static final String CALLER_SPAN = "00f067aa0ba902b7";
    private static final String TRACEPARENT = "00-" + TRACE_ID + "-" + CALLER_SPAN + "-01";
    private static final String BODY = "{\"model\":\"smollm2\",\"stream\":true,\"max_tokens\":9,\"temperature\":0.7,"
            + "\"top_p\":0.8,\"messages\":[{\"role\":\"user\",\"content\":\"a private question\"}]}";

    private final OkHttpClient client = new OkHttpClient.Builder().readTimeout(30, TimeUnit.SECONDS).build();
    private final InMemorySpanExporter exporter = InMemorySpanExporter.create();

    private FreshGateway traced(int replicas, String... args) {
        return FreshGateway.startWith(replicas, Map.of("testSpanExporter", exporter), args);
    }

    private String stream(FreshGateway gateway, String key, String body, String requestId) throws Exception {
        Request request = new Request.Builder().url(gateway.url("/v1/chat/completions"))
                .header("Authorization", "Bearer " + key).header("X-Request-Id", requestId)
                .header("traceparent", TRACEPARENT).post(RequestBody.create(body, JSON)).build();
        try (Response response = client.newCall(request).execute()) {
            return response.code() + " " + response.body().string();
        }
    }

    /**
     * The spans of the caller's trace once its SERVER span ended (that one ends last, when the async response
     * completes); the admin calls' own traces are left out.
     */
    private List<SpanData> spans() throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (mine().stream().noneMatch(s -> s.getKind() == SpanKind.SERVER) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        return mine();
    }

    private List<SpanData> mine() {
        return exporter.getFinishedSpanItems().stream().filter(s -> s.getTraceId().equals(TRACE_ID)).toList();
    }

    private static int admin(FreshGateway gateway, String method, String path, String json) throws Exception {
        try (Response response = gateway.admin(method, path, json)) {
            return response.code();
        }
    }

    private static SpanData named(List<SpanData> spans, String name) {
        return spans.stream().filter(s -> s.getName().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void continuesTheCallersTraceAndSendsEachAttemptsContextUpstream() throws Exception {
        try (FreshGateway gateway = traced(1)) {
            gateway.upstream().answer(r -> SseScript.answer("chatcmpl-7", 11, "Hel", "lo").response());
            assertThat(stream(gateway, gateway.newKey(), BODY, "trace-1")).startsWith("200 ");

            List<SpanData> spans = spans();
            assertThat(spans).extracting(SpanData::getName).containsExactlyInAnyOrder(
                    "POST /v1/chat/completions", "admission", "chat smollm2");
            assertThat(spans).allSatisfy(s -> assertThat(s.getTraceId()).isEqualTo(TRACE_ID));
            SpanData request = named(spans, "POST /v1/chat/completions");
            assertThat(request.getKind()).isEqualTo(SpanKind.SERVER);
            assertThat(request.getParentSpanId()).isEqualTo(CALLER_SPAN);
            assertThat(request.getAttributes().get(AttributeKey.stringKey("llm_relay.request_id"))).isEqualTo("trace-1");
            assertThat(request.getAttributes().get(AttributeKey.longKey("http.response.status_code"))).isEqualTo(200);
            assertThat(request.getResource().getAttribute(AttributeKey.stringKey("service.name")))
                    .isEqualTo("llm-relay-gateway");
            assertThat(named(spans, "admission").getParentSpanId()).isEqualTo(request.getSpanId());

            SpanData attempt = named(spans, "chat smollm2");
            assertThat(attempt.getKind()).isEqualTo(SpanKind.CLIENT);
            assertThat(attempt.getParentSpanId()).isEqualTo(request.getSpanId());
            var a = attempt.getAttributes();
            assertThat(a.get(AttributeKey.stringKey("gen_ai.operation.name"))).isEqualTo("chat");
            assertThat(a.get(AttributeKey.stringKey("gen_ai.provider.name"))).isEqualTo("llm-relay");
            assertThat(a.get(AttributeKey.stringKey("gen_ai.request.model"))).isEqualTo("smollm2");
            assertThat(a.get(AttributeKey.longKey("gen_ai.request.max_tokens"))).isEqualTo(9);
            assertThat(a.get(AttributeKey.doubleKey("gen_ai.request.temperature"))).isEqualTo(0.7);
            assertThat(a.get(AttributeKey.doubleKey("gen_ai.request.top_p"))).isEqualTo(0.8);
            assertThat(a.get(AttributeKey.stringKey("gen_ai.response.id"))).isEqualTo("chatcmpl-7");
            assertThat(a.get(AttributeKey.stringArrayKey("gen_ai.response.finish_reasons"))).containsExactly("stop");
            assertThat(a.get(AttributeKey.longKey("gen_ai.usage.input_tokens"))).isEqualTo(11);
            assertThat(a.get(AttributeKey.longKey("gen_ai.usage.output_tokens"))).isEqualTo(2);
            assertThat(a.get(AttributeKey.doubleKey("gen_ai.latency.time_to_first_token"))).isPositive();
            assertThat(attempt.getAttributes().asMap().values()).noneMatch(v -> v.toString().contains("private"));

            // the upstream got the attempt's span as its parent
            RecordedRequest sent = gateway.upstream().chats().get(0);
            assertThat(sent.getHeaders().get("traceparent"))
                    .isEqualTo("00-" + TRACE_ID + "-" + attempt.getSpanId() + "-01");
        }
    }

    @Test
    void aNonStreamTextCompletionIsTracedToItsAsyncEnd() throws Exception {
        try (FreshGateway gateway = traced(1)) {
            String id = "cmpl-3";
            String chunk = "{\"id\":\"" + id + "\",\"object\":\"text_completion\",\"created\":1,\"model\":\"smollm2\","
                    + "\"choices\":[{\"index\":0,\"text\":\"%s\",\"logprobs\":null,\"finish_reason\":%s}]}";
            gateway.upstream().answer(r -> new SseScript().event(chunk.formatted(" Paris", "null"))
                    .event(chunk.formatted(".", "\"stop\"")).event(SseScript.usageChunk(id, 5, 2)).done().response());
            Request request = new Request.Builder().url(gateway.url("/v1/completions"))
                    .header("Authorization", "Bearer " + gateway.newKey()).header("traceparent", TRACEPARENT)
                    .post(RequestBody.create("{\"model\":\"smollm2\",\"prompt\":\"The capital of France is\","
                            + "\"max_tokens\":4}", JSON)).build();
            try (Response response = client.newCall(request).execute()) {
                assertThat(response.code()).isEqualTo(200);
                assertThat(response.body().string()).contains(" Paris.");
            }

            List<SpanData> spans = spans();
            assertThat(spans).extracting(SpanData::getName).containsExactlyInAnyOrder(
                    "POST /v1/completions", "admission", "text_completion smollm2");
            SpanData served = named(spans, "text_completion smollm2");
            var a = served.getAttributes();
            assertThat(a.get(AttributeKey.stringKey("gen_ai.operation.name"))).isEqualTo("text_completion");
            assertThat(a.get(AttributeKey.stringKey("gen_ai.response.id"))).isEqualTo(id);
            assertThat(a.get(AttributeKey.longKey("gen_ai.request.max_tokens"))).isEqualTo(4);
            assertThat(a.get(AttributeKey.stringArrayKey("gen_ai.response.finish_reasons"))).containsExactly("stop");
            assertThat(a.get(AttributeKey.longKey("gen_ai.usage.input_tokens"))).isEqualTo(5);
            assertThat(a.get(AttributeKey.longKey("gen_ai.usage.output_tokens"))).isEqualTo(2);
            SpanData whole = named(spans, "POST /v1/completions");
            assertThat(whole.getAttributes().get(AttributeKey.longKey("http.response.status_code"))).isEqualTo(200);
            assertThat(whole.getEndEpochNanos()).isGreaterThanOrEqualTo(served.getEndEpochNanos());
        }
    }

    @Test
    void aBusyReplicaAndTheOneThatServesAreSiblingAttempts() throws Exception {
        try (FreshGateway gateway = traced(2)) {
            MockResponse busy = new MockResponse.Builder().code(503).setHeader("Content-Type", "application/json")
                    .setHeader("Retry-After", "3").body("{\"error\":{\"message\":\"busy\",\"type\":"
                            + "\"service_unavailable\",\"param\":null,\"code\":\"queue_full\"}}").build();
            gateway.upstream(0).answer(r -> busy);
            gateway.upstream(1).answer(r -> SseScript.answer("chatcmpl-8", 5, "ok").response());
            // a fresh pool's first pick is its first replica (equal loads, the rotation starts there)
            assertThat(stream(gateway, gateway.newKey(), BODY, "trace-failover")).startsWith("200 ");
            assertThat(gateway.upstream(0).chatRequests()).isEqualTo(1);

            List<SpanData> spans = spans();
            SpanData request = named(spans, "POST /v1/chat/completions");
            List<SpanData> attempts = spans.stream().filter(s -> s.getKind() == SpanKind.CLIENT)
                    .sorted(java.util.Comparator.comparing(s -> s.getAttributes().get(
                            AttributeKey.longKey("llm_relay.attempt")))).toList();
            assertThat(attempts).hasSize(2);
            assertThat(attempts).allSatisfy(s -> assertThat(s.getParentSpanId()).isEqualTo(request.getSpanId()));
            SpanData failed = attempts.get(0);
            SpanData served = attempts.get(1);
            assertThat(failed.getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);
            assertThat(failed.getAttributes().get(AttributeKey.stringKey("error.type"))).isEqualTo("busy");
            assertThat(failed.getAttributes().get(AttributeKey.longKey("http.response.status_code"))).isEqualTo(503);
            assertThat(failed.getAttributes().get(AttributeKey.longKey("server.port")))
                    .isEqualTo(Long.parseLong(gateway.upstream(0).baseUrl().replaceAll(".*:", "")));
            assertThat(served.getStatus().getStatusCode()).isEqualTo(StatusCode.UNSET);
            assertThat(served.getAttributes().get(AttributeKey.stringKey("gen_ai.response.id"))).isEqualTo("chatcmpl-8");
            assertThat(served.getAttributes().get(AttributeKey.longKey("server.port")))
                    .isEqualTo(Long.parseLong(gateway.upstream(1).baseUrl().replaceAll(".*:", "")));
            assertThat(failed.getEndEpochNanos()).isLessThanOrEqualTo(served.getStartEpochNanos());
        }
    }

    @Test
    void contentFilterHitsAreEventsOnAdmissionAndOnTheRequest() throws Exception {
        try (FreshGateway gateway = traced(1)) {
            assertThat(admin(gateway, "PUT", "/admin/content-filter/lists/prompt-words",
                    "{\"action\":\"block\",\"checkPrompt\":true,\"words\":[\"private\"]}")).isEqualTo(200);
            assertThat(stream(gateway, gateway.newKey(), BODY, "trace-prompt")).startsWith("400 ");
            List<SpanData> refused = spans();
            assertThat(refused).extracting(SpanData::getName)
                    .containsExactlyInAnyOrder("POST /v1/chat/completions", "admission");
            assertThat(named(refused, "admission").getEvents()).singleElement().satisfies(e -> assertHit(e,
                    "prompt-words", "block", "prompt"));
            assertThat(named(refused, "admission").getAttributes()
                    .get(AttributeKey.stringKey("llm_relay.refused_by"))).isEqualTo("PromptFilterStage");

            exporter.reset();
            assertThat(admin(gateway, "DELETE", "/admin/content-filter/lists/prompt-words", null))
                    .isEqualTo(204);
            assertThat(admin(gateway, "PUT", "/admin/content-filter/lists/output-words",
                    "{\"action\":\"block\",\"checkPrompt\":false,\"words\":[\"secret\"]}")).isEqualTo(200);
            gateway.upstream().answer(r -> SseScript.answer("chatcmpl-9", 5, "the ", "secret", " is").response());
            assertThat(stream(gateway, gateway.newKey(), BODY, "trace-output")).startsWith("200 ");
            SpanData request = named(spans(), "POST /v1/chat/completions");
            assertThat(request.getEvents()).singleElement().satisfies(e -> assertHit(e, "output-words", "block",
                    "output"));
            assertThat(named(spans(), "chat smollm2").getAttributes()
                    .get(AttributeKey.stringArrayKey("gen_ai.response.finish_reasons"))).containsExactly("content_filter");
        }
    }

    private static void assertHit(EventData event, String list, String action, String side) {
        assertThat(event.getName()).isEqualTo("content_filter.hit");
        assertThat(event.getAttributes().get(AttributeKey.stringKey("llm_relay.content_filter.list"))).isEqualTo(list);
        assertThat(event.getAttributes().get(AttributeKey.stringKey("llm_relay.content_filter.action")))
                .isEqualTo(action);
        assertThat(event.getAttributes().get(AttributeKey.stringKey("llm_relay.content_filter.side"))).isEqualTo(side);
        assertThat(event.getAttributes().get(AttributeKey.longKey("llm_relay.content_filter.matches"))).isEqualTo(1);
    }

    @Test
    void withTracingOffNothingIsSentUpstreamButTheRequest() throws Exception {
        try (FreshGateway gateway = FreshGateway.start(1)) {
            assertThat(gateway.bean(Tracing.class).enabled()).isFalse();
            gateway.upstream().answer(r -> SseScript.answer("chatcmpl-1", 3, "hi").response());
            assertThat(stream(gateway, gateway.newKey(), BODY, "trace-off")).startsWith("200 ");
            RecordedRequest sent = gateway.upstream().chats().get(0);
            assertThat(sent.getHeaders().get("traceparent")).isNull();
        }
    }

    @Test
    void onlyAConfiguredEndpointTurnsTracingOnAndTheStandardSwitchesTurnItOff() {
        assertThat(TracingConfig.enabled(new MockEnvironment())).isFalse();
        assertThat(TracingConfig.enabled(new MockEnvironment().withProperty("otel.exporter.otlp.endpoint", "")))
                .isFalse();
        assertThat(TracingConfig.enabled(new MockEnvironment().withProperty("otel.service.name", "x"))).isFalse();
        assertThat(TracingConfig.enabled(new MockEnvironment()
                .withProperty("otel.exporter.otlp.endpoint", "http://collector:4318"))).isTrue();
        assertThat(TracingConfig.enabled(new MockEnvironment()
                .withProperty("otel.exporter.otlp.traces.endpoint", "http://collector:4318/v1/traces"))).isTrue();
        assertThat(TracingConfig.enabled(new MockEnvironment()
                .withProperty("otel.exporter.otlp.endpoint", "http://collector:4318")
                .withProperty("otel.sdk.disabled", "true"))).isFalse();
        assertThat(TracingConfig.enabled(new MockEnvironment()
                .withProperty("otel.exporter.otlp.endpoint", "http://collector:4318")
                .withProperty("otel.traces.exporter", "none"))).isFalse();
    }
}
