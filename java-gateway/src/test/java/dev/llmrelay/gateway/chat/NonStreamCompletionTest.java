package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.RecordedRequest;
import okhttp3.Response;

/** A client that wants one JSON answer: assembled from the upstream's stream, and cancelled when it leaves. */
class NonStreamCompletionTest extends GatewayTestSupport {

    private final ObjectMapper mapper = new ObjectMapper();

    @Test
    void answerIsAssembledFromTheUpstreamStreamWhileTheClientWaits() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        SseScript script = new SseScript().event(SseScript.chunk("n1", "Par", null)).await(release)
                .event(SseScript.chunk("n1", "is", null)).event(SseScript.chunk("n1", null, "stop"))
                .event(SseScript.usageChunk("n1", 9, 2)).done();
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());

        Thread releaser = new Thread(() -> {
            try {
                script.started.await(30, TimeUnit.SECONDS);
                Thread.sleep(1000); // the client stays while several connection probes run
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            release.countDown();
        });
        releaser.start();
        try (Response response = client.newCall(chat(newKey(), chatBody(false, null), "assembled").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.header("Content-Type")).startsWith("application/json");
            assertThat(response.header("X-RateLimit-Limit")).isEqualTo("1000");
            JsonNode body = mapper.readTree(response.body().string());
            assertThat(body.path("id").asText()).isEqualTo("n1");
            assertThat(body.path("object").asText()).isEqualTo("chat.completion");
            assertThat(body.path("model").asText()).isEqualTo("smollm2");
            assertThat(body.path("choices")).hasSize(1);
            assertThat(body.path("choices").path(0).path("message").path("role").asText()).isEqualTo("assistant");
            assertThat(body.path("choices").path(0).path("message").path("content").asText()).isEqualTo("Paris");
            assertThat(body.path("choices").path(0).path("finish_reason").asText()).isEqualTo("stop");
            assertThat(body.path("usage").toString())
                    .isEqualTo("{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}");
        }
        RecordedRequest upstreamRequest = UPSTREAM_A.chatRequests() == 1 ? UPSTREAM_A.requests().get(0)
                : UPSTREAM_B.requests().get(0);
        JsonNode sent = mapper.readTree(upstreamRequest.getBody().utf8());
        assertThat(sent.path("stream").asBoolean()).isTrue();
        Map<String, Object> row = usageRow("assembled");
        assertThat(row.get("END_REASON")).isEqualTo("stop");
        assertThat(row.get("STREAMED")).isEqualTo(false);
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(2);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("reported");
    }

    @Test
    void clientThatLeavesCancelsTheUpstreamBillsWhatWasGeneratedAndFreesItsSlot() throws Exception {
        CountDownLatch fiveSent = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SseScript script = new SseScript();
        for (int i = 0; i < 5; i++) {
            script.event(SseScript.chunk("g1", "t" + i, null));
        }
        script.countDownAndAwait(fiveSent).await(release).tokensUntilClosed("g1");
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());
        String key = newKey(1000, 1_000_000, 1); // one request at a time: the next needs the freed slot

        postAndLeave("/v1/chat/completions", key, chatBody(false, null), "leaves", fiveSent);

        Map<String, Object> row = usageRow("leaves"); // written when the gateway cancelled the upstream call
        release.countDown();
        assertThat(script.upstreamSocketClosed.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(row.get("END_REASON")).isEqualTo("client_cancelled");
        assertThat(row.get("STREAMED")).isEqualTo(false);
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(5);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("counted");

        UPSTREAM_A.answer(r -> SseScript.answer("g2", 3, "ok").response());
        UPSTREAM_B.answer(r -> SseScript.answer("g2", 3, "ok").response());
        try (Response response = client.newCall(chat(key, chatBody(false, null), "after-leaving").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(200);
        }
    }
}
