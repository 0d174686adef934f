package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import okhttp3.Response;

/**
 * Requests with {@code n} choices and {@code logprobs}: the gateway passes the fields through, reserves tokens
 * for every choice, assembles a non-stream answer with every choice and its logprobs, and bills all choices.
 * The upstream is scripted (a model-service streams each choice's chunks with its index, interleaved).
 */
class ChoicesAndLogprobsTest extends GatewayTestSupport {

    private final ObjectMapper mapper = new ObjectMapper();

    private static String choiceChunk(String id, int index, String content, String finishReason, String logprobs) {
        String delta = content == null ? "{}" : "{\"content\":\"" + content + "\"}";
        return "{\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"smollm2\","
                + "\"choices\":[{\"index\":" + index + ",\"delta\":" + delta
                + (logprobs == null ? "" : ",\"logprobs\":{\"content\":[" + logprobs + "]}")
                + ",\"finish_reason\":" + (finishReason == null ? "null" : "\"" + finishReason + "\"") + "}]}";
    }

    private static String logprob(String token, double value) {
        return "{\"token\":\"" + token + "\",\"logprob\":" + value + ",\"bytes\":[" + (int) token.charAt(0)
                + "],\"top_logprobs\":[{\"token\":\"" + token + "\",\"logprob\":" + value + ",\"bytes\":["
                + (int) token.charAt(0) + "]}]}";
    }

    private void bothUpstreamsAnswer(SseScript script) {
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());
    }

    @Test
    void tokenReservationCoversEveryChoice() throws Exception {
        bothUpstreamsAnswer(SseScript.answer("r1", 7, "ok"));
        // prompt estimate 7 ("Hello there": 11 characters / 4 + 4 per message) + 3 choices x 100
        String body = chatBody(true, "\"max_tokens\":100,\"n\":3");
        try (Response response = client.newCall(chat(newKey(1000, 1000, 10), body, "n-reserve").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.header("X-RateLimit-Remaining-Tokens")).isEqualTo(String.valueOf(1000 - 7 - 300));
            response.body().string();
        }
    }

    @Test
    void whileOneRequestHoldsTokensForItsChoicesTheNextThatCannotFitIsRefused() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        bothUpstreamsAnswer(new SseScript().event(SseScript.chunk("r2", "a", null)).await(release)
                .event(SseScript.chunk("r2", null, "stop")).event(SseScript.usageChunk("r2", 7, 1)).done());
        String key = newKey(1000, 500, 10);
        String body = chatBody(true, "\"max_tokens\":100,\"n\":3"); // reserves 7 + 3 x 100 = 307 of 500
        try (Response first = client.newCall(chat(key, body, "n-holds").build()).execute()) {
            assertThat(first.code()).isEqualTo(200);
            assertThat(first.body().source().readUtf8Line()).startsWith("data: ");
            try (Response second = client.newCall(chat(key, body, "n-refused").build()).execute()) {
                assertThat(second.code()).isEqualTo(429);
            }
            release.countDown();
            first.body().string();
        }
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isEqualTo(1);
    }

    @Test
    void nonStreamAnswerHasEveryChoiceWithItsLogprobsAndUsageOfAllChoices() throws Exception {
        bothUpstreamsAnswer(new SseScript()
                .event(choiceChunk("m1", 0, "", null, null)).event(choiceChunk("m1", 1, "", null, null))
                .event(choiceChunk("m1", 0, "Pa", null, logprob("Pa", -0.5)))
                .event(choiceChunk("m1", 1, "Ly", null, logprob("Ly", -1.25)))
                .event(choiceChunk("m1", 1, "on", null, logprob("on", -0.25)))
                .event(choiceChunk("m1", 0, "ris", null, logprob("ris", -0.125)))
                .event(choiceChunk("m1", 1, null, "length", null))
                .event(choiceChunk("m1", 0, null, "stop", logprob("<", -0.0625)))
                .event(SseScript.usageChunk("m1", 9, 5)).done());
        String body = chatBody(false, "\"n\":2,\"logprobs\":true,\"top_logprobs\":1");
        try (Response response = client.newCall(chat(newKey(), body, "n-assembled").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            JsonNode answer = mapper.readTree(response.body().string());
            JsonNode choices = answer.path("choices");
            assertThat(choices).hasSize(2);
            assertThat(choices.path(0).path("index").asInt()).isEqualTo(0);
            assertThat(choices.path(0).path("message").path("content").asText()).isEqualTo("Paris");
            assertThat(choices.path(0).path("finish_reason").asText()).isEqualTo("stop");
            assertThat(choices.path(0).path("logprobs").path("content"))
                    .isEqualTo(mapper.readTree("[" + logprob("Pa", -0.5) + "," + logprob("ris", -0.125) + ","
                            + logprob("<", -0.0625) + "]"));
            assertThat(choices.path(1).path("index").asInt()).isEqualTo(1);
            assertThat(choices.path(1).path("message").path("content").asText()).isEqualTo("Lyon");
            assertThat(choices.path(1).path("finish_reason").asText()).isEqualTo("length");
            assertThat(choices.path(1).path("logprobs").path("content"))
                    .isEqualTo(mapper.readTree("[" + logprob("Ly", -1.25) + "," + logprob("on", -0.25) + "]"));
            assertThat(answer.path("usage").toString())
                    .isEqualTo("{\"prompt_tokens\":9,\"completion_tokens\":5,\"total_tokens\":14}");
        }
        JsonNode sent = mapper.readTree((UPSTREAM_A.chatRequests() == 1 ? UPSTREAM_A : UPSTREAM_B).requests().get(0)
                .getBody().utf8());
        assertThat(sent.path("n").asInt()).isEqualTo(2);
        assertThat(sent.path("logprobs").asBoolean()).isTrue();
        assertThat(sent.path("top_logprobs").asInt()).isEqualTo(1);
        Map<String, Object> row = usageRow("n-assembled");
        assertThat(row.get("PROMPT_TOKENS")).isEqualTo(9);
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(5);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("reported");
    }

    @Test
    void streamCutMidwayBillsTheTextOfEveryChoice() throws Exception {
        bothUpstreamsAnswer(new SseScript()
                .event(choiceChunk("c1", 0, "a", null, null)).event(choiceChunk("c1", 1, "b", null, null))
                .event(choiceChunk("c1", 1, "c", null, null)).event(choiceChunk("c1", 0, "d", null, null)).die());
        try (Response response = client.newCall(chat(newKey(), chatBody(true, "\"n\":2"), "n-cut").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(200);
            response.body().string();
        }
        Map<String, Object> row = usageRow("n-cut");
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(4);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("counted");
    }

    @Test
    void upstreamThatEndsAfterOnlyOneOfTwoChoicesFinishedIsABrokenStreamNotAnAnswer() throws Exception {
        // no [DONE]: the stream closes cleanly after choice 0's finish_reason, choice 1 still unfinished
        bothUpstreamsAnswer(new SseScript()
                .event(choiceChunk("e1", 0, "a", null, null)).event(choiceChunk("e1", 1, "b", null, null))
                .event(choiceChunk("e1", 0, null, "stop", null)));
        try (Response response = client.newCall(chat(newKey(), chatBody(false, "\"n\":2"), "n-early-end").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(502);
        }
        Map<String, Object> row = usageRow("n-early-end");
        assertThat(row.get("END_REASON")).isEqualTo("upstream_error");
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(2);
    }

    @Test
    void malformedChoiceCountIsRefusedWithParamN() throws Exception {
        for (String n : new String[] {"0", "-1", "\"three\"", "1.5"}) {
            try (Response response = client.newCall(chat(newKey(), chatBody(false, "\"n\":" + n), "n-bad").build())
                    .execute()) {
                assertThat(response.code()).as("n=" + n).isEqualTo(400);
                JsonNode error = mapper.readTree(response.body().string()).path("error");
                assertThat(error.path("param").asText()).isEqualTo("n");
            }
        }
    }
}
