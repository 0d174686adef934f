package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import okhttp3.Response;
import okio.BufferedSource;

class StreamRelayTest extends GatewayTestSupport {

    @Test
    void relaysEventsInOrderWithOpenAiFramingAndHidesUsageChunkNotAskedFor() throws Exception {
        UPSTREAM_A.answer(r -> SseScript.answer("c1", 7, "Hel", "lo", " wor", "ld").response());
        UPSTREAM_B.answer(r -> SseScript.answer("c1", 7, "Hel", "lo", " wor", "ld").response());

        try (Response response = client.newCall(chat(newKey(), chatBody(true, null), "relay-order").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.header("Content-Type")).startsWith("text/event-stream");
            assertThat(response.header("Cache-Control")).isEqualTo("no-cache");
            assertThat(response.header("X-Accel-Buffering")).isEqualTo("no");
            assertThat(response.header("X-Request-Id")).isEqualTo("relay-order");
            assertThat(response.header("X-RateLimit-Limit")).isEqualTo("1000");
            List<String> lines = lines(response);
            // framed as the model-service frames it: "data: <json>", one event per blank-line block
            assertThat(lines).allSatisfy(line -> assertThat(line).startsWith("data: "));
            List<String> events = dataEvents(lines);
            assertThat(events).containsExactly(
                    SseScript.chunk("c1", "Hel", null), SseScript.chunk("c1", "lo", null),
                    SseScript.chunk("c1", " wor", null), SseScript.chunk("c1", "ld", null),
                    SseScript.chunk("c1", null, "stop"), "[DONE]");
        }
        Map<String, Object> row = usageRow("relay-order");
        assertThat(row.get("END_REASON")).isEqualTo("stop");
        assertThat(row.get("PROMPT_TOKENS")).isEqualTo(7);
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(4);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("reported");
    }

    @Test
    void asksUpstreamForUsageAndPassesTheUsageChunkToAClientThatAskedForIt() throws Exception {
        UPSTREAM_A.answer(r -> SseScript.answer("c2", 3, "Hi").response());
        UPSTREAM_B.answer(r -> SseScript.answer("c2", 3, "Hi").response());

        String body = chatBody(true, "\"stream_options\":{\"include_usage\":true}");
        try (Response response = client.newCall(chat(newKey(), body, "relay-usage").build()).execute()) {
            List<String> events = dataEvents(lines(response));
            assertThat(events).containsExactly(SseScript.chunk("c2", "Hi", null), SseScript.chunk("c2", null, "stop"),
                    SseScript.usageChunk("c2", 3, 1), "[DONE]");
        }
        var sent = UPSTREAM_A.requests().isEmpty() ? UPSTREAM_B.requests().get(0) : UPSTREAM_A.requests().get(0);
        assertThat(sent.getBody().utf8()).contains("\"include_usage\":true").contains("\"stream\":true");
        assertThat(sent.getHeaders().get("X-Request-Id")).isEqualTo("relay-usage");
        assertThat(sent.getHeaders().get("Authorization")).isEqualTo("Bearer upstream-secret");
    }

    @Test
    void slowUpstreamEventsReachTheClientAsProducedNotBuffered() throws Exception {
        CountDownLatch clientSawFirst = new CountDownLatch(1);
        var script = new SseScript().event(SseScript.chunk("c3", "first", null)).await(clientSawFirst)
                .event(SseScript.chunk("c3", "second", null)).event(SseScript.chunk("c3", null, "stop")).done();
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());

        try (Response response = client.newCall(chat(newKey(), chatBody(true, null), "relay-slow").build())
                .execute()) {
            BufferedSource source = response.body().source();
            String first = nextData(source);
            // the upstream has not produced event 2 yet: it waits for this latch
            assertThat(first).isEqualTo(SseScript.chunk("c3", "first", null));
            clientSawFirst.countDown();
            assertThat(nextData(source)).isEqualTo(SseScript.chunk("c3", "second", null));
            assertThat(nextData(source)).isEqualTo(SseScript.chunk("c3", null, "stop"));
            assertThat(nextData(source)).isEqualTo("[DONE]");
        }
    }

    @Test
    void streamCutByMaxTokensIsRecordedWithEndReasonLengthAndTtft() throws Exception {
        var script = new SseScript().event(SseScript.chunk("c4", "one", null)).event(SseScript.chunk("c4", " two", null))
                .event(SseScript.chunk("c4", null, "length")).event(SseScript.usageChunk("c4", 6, 2)).done();
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());
        try (Response response = client.newCall(chat(newKey(), chatBody(true, "\"max_tokens\":2"), "relay-length")
                .build()).execute()) {
            assertThat(dataEvents(lines(response))).last().isEqualTo("[DONE]");
        }
        Map<String, Object> row = usageRow("relay-length");
        assertThat(row.get("END_REASON")).isEqualTo("length");
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(2);
        assertThat(row.get("TTFT_MS")).isNotNull();
        assertThat(row.get("UPSTREAM")).asString().startsWith("http://127.0.0.1:");
    }

    @Test
    void nullStreamOptionsFromAClientAreReplacedNotAnError() throws Exception {
        UPSTREAM_A.answer(r -> SseScript.answer("c5", 2, "ok").response());
        UPSTREAM_B.answer(r -> SseScript.answer("c5", 2, "ok").response());
        try (Response response = client.newCall(chat(newKey(), chatBody(true, "\"stream_options\":null"),
                "relay-null-options").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(dataEvents(lines(response))).containsExactly(SseScript.chunk("c5", "ok", null),
                    SseScript.chunk("c5", null, "stop"), "[DONE]");
        }
    }

    static String nextData(BufferedSource source) throws IOException {
        String line;
        while ((line = source.readUtf8Line()) != null) {
            if (line.startsWith("data:")) {
                return line.substring(5).strip();
            }
        }
        return null;
    }
}
