package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;

import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.MapConfigurationPropertySource;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;

/** The shape checks, with n bounded by gateway.max-choices (default 4). */
class ValidateStageTest {

    private static final ApiKey KEY = new ApiKey(1, "k", "sk-relay-x", 10, 1000, 2, true, Instant.now(), null);

    private final ValidateStage stage = new ValidateStage(
            new Binder(new MapConfigurationPropertySource()).bindOrCreate("gateway", GatewayProperties.class));

    private GenerationRequest request(GenerationEndpoint endpoint, String json) throws Exception {
        return new GenerationRequest(endpoint, KEY, (ObjectNode) new ObjectMapper().readTree(json), "r", null);
    }

    @Test
    void nAboveTheLimitIs400NamingN() throws Exception {
        GenerationRequest request = request(GenerationEndpoint.CHAT,
                "{\"n\":1000,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        assertThatThrownBy(() -> stage.apply(request)).isInstanceOfSatisfying(OpenAiException.class, e -> {
            assertThat(e.status()).isEqualTo(400);
            assertThat(e.param()).isEqualTo("n");
            assertThat(e.code()).isEqualTo("integer_above_max_value");
        });
    }

    @Test
    void aValidRequestRecordsItsChoices() throws Exception {
        GenerationRequest request = request(GenerationEndpoint.CHAT,
                "{\"n\":4,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        stage.apply(request);
        assertThat(request.choices).isEqualTo(4);
    }

    @Test
    void eachEndpointChecksItsOwnShape() throws Exception {
        GenerationRequest chatWithoutMessages = request(GenerationEndpoint.CHAT, "{\"prompt\":\"hi\"}");
        assertThatThrownBy(() -> stage.apply(chatWithoutMessages)).isInstanceOfSatisfying(OpenAiException.class,
                e -> assertThat(e.param()).isEqualTo("messages"));
        GenerationRequest completion = request(GenerationEndpoint.COMPLETIONS, "{\"prompt\":\"hi\",\"max_tokens\":0}");
        assertThatThrownBy(() -> stage.apply(completion)).isInstanceOfSatisfying(OpenAiException.class,
                e -> assertThat(e.param()).isEqualTo("max_tokens"));
    }
}
