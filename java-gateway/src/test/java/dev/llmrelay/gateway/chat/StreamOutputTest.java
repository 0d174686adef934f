package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;

/** What the output chain tells the books and what it lets through, chunk by chunk (no filter list in force). */
class StreamOutputTest {

    private static final ApiKey KEY = new ApiKey(1, "k", "sk-relay-x", 10, 1000, 2, true, Instant.now(), null);
    private final ObjectMapper mapper = new ObjectMapper();

    private GenerationRequest request(boolean wantsUsage, int choices) throws Exception {
        GenerationRequest request = new GenerationRequest(GenerationEndpoint.CHAT, KEY, (ObjectNode) mapper.readTree(
                "{\"stream\":true,\"stream_options\":{\"include_usage\":" + wantsUsage + "},\"messages\":[]}"), "r",
                null);
        request.choices = choices;
        request.promptEstimate = 9;
        return request;
    }

    private String observe(StreamOutput output, String data) throws Exception {
        JsonNode chunk = mapper.readTree(data);
        return output.observe(data, chunk);
    }

    private static String content(int index, String text, String finish) {
        return "{\"model\":\"served\",\"choices\":[{\"index\":" + index + ",\"delta\":{\"content\":\"" + text
                + "\"},\"finish_reason\":" + (finish == null ? "null" : "\"" + finish + "\"") + "}]}";
    }

    @Test
    void usageTheClientDidNotAskForIsDroppedButBilled() throws Exception {
        StreamOutput output = new StreamOutput(request(false, 1), null, null);
        assertThat(observe(output, content(0, "Hi", "stop"))).isEqualTo(content(0, "Hi", "stop"));
        assertThat(observe(output, "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}"))
                .isNull();
        assertThat(output.billed(true)).isEqualTo(new ChatUsage(5, 2, true));
        assertThat(output.model()).isEqualTo("served");
        assertThat(output.complete()).isTrue();
    }

    @Test
    void usageTheClientAskedForIsRelayedAsSent() throws Exception {
        StreamOutput output = new StreamOutput(request(true, 1), null, "m");
        String usage = "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}";
        assertThat(observe(output, usage)).isEqualTo(usage);
        assertThat(output.model()).isEqualTo("m");
    }

    @Test
    void aCutStreamIsBilledForThePromptEstimateAndOneTokenPerContentChunk() throws Exception {
        StreamOutput output = new StreamOutput(request(false, 1), null, "m");
        observe(output, "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}");
        assertThat(output.firstTokenNanos()).isZero(); // a role-only chunk is no first token
        observe(output, content(0, "a", null));
        observe(output, content(0, "b", null));
        assertThat(output.firstTokenNanos()).isPositive();
        assertThat(output.billed(true)).isEqualTo(new ChatUsage(9, 2, false));
        assertThat(output.complete()).isFalse();
        assertThat(new StreamOutput(request(false, 1), null, "m").billed(false)).isEqualTo(new ChatUsage(0, 0, false));
    }

    @Test
    void anAnswerIsWholeOnlyOnceEveryChoiceFinished() throws Exception {
        StreamOutput output = new StreamOutput(request(false, 2), null, "m");
        observe(output, content(1, "x", "stop"));
        assertThat(output.complete()).isFalse();
        observe(output, content(0, "y", "length"));
        assertThat(output.complete()).isTrue();
        assertThat(output.finishReason()).isEqualTo("length");
    }
}
