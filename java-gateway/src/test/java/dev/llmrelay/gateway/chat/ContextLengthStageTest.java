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
import dev.llmrelay.gateway.upstream.ModelListings;

/** The reservation (prompt + n x budget, bounded by the context) and the refusal of a budget no context holds. */
class ContextLengthStageTest {

    private static final ApiKey KEY = new ApiKey(1, "k", "sk-relay-x", 10, 1000, 2, true, Instant.now(), null);
    private static final GatewayProperties DEFAULTS = new Binder(new MapConfigurationPropertySource())
            .bindOrCreate("gateway", GatewayProperties.class); // default-max-tokens-estimate 1024

    private final ContextLengthStage stage = new ContextLengthStage(ModelListings.listing("m", 2048), DEFAULTS);

    /** 40 characters: about 10 tokens, plus 4 for the one message. */
    private GenerationRequest request(String model, String extra, int choices) throws Exception {
        GenerationRequest request = new GenerationRequest(GenerationEndpoint.CHAT, KEY, (ObjectNode) new ObjectMapper()
                .readTree("{\"messages\":[{\"role\":\"user\",\"content\":\"" + "x".repeat(40) + "\"}]" + extra + "}"),
                "r", null);
        request.model = model;
        request.choices = choices;
        return request;
    }

    @Test
    void theReservationIsThePromptOnceAndEachChoicesBudget() throws Exception {
        GenerationRequest request = request("m", ",\"max_tokens\":100", 3);
        stage.apply(request);
        assertThat(request.promptEstimate).isEqualTo(14);
        assertThat(request.reservation).isEqualTo(14 + 3 * 100);
    }

    @Test
    void withoutABudgetEachChoiceReservesTheDefaultEstimateBoundedByTheRoomLeft() throws Exception {
        GenerationRequest known = request("m", "", 2);
        stage.apply(known);
        assertThat(known.reservation).isEqualTo(14 + 2 * 1024);

        ContextLengthStage small = new ContextLengthStage(ModelListings.listing("m", 500), DEFAULTS);
        GenerationRequest bounded = request("m", "", 1);
        small.apply(bounded);
        assertThat(bounded.reservation).isEqualTo(14 + (500 - 14));

        GenerationRequest unknownModel = request("other", "", 1);
        small.apply(unknownModel);
        assertThat(unknownModel.reservation).isEqualTo(14 + 1024);
    }

    @Test
    void aBudgetTheServedModelsContextCannotHoldIs400NamingTheField() throws Exception {
        GenerationRequest request = request("m", ",\"max_completion_tokens\":2040", 1);
        assertThatThrownBy(() -> stage.apply(request)).isInstanceOfSatisfying(OpenAiException.class, e -> {
            assertThat(e.status()).isEqualTo(400);
            assertThat(e.code()).isEqualTo("context_length_exceeded");
            assertThat(e.param()).isEqualTo("max_completion_tokens");
            assertThat(e.getMessage()).contains("Ask for at most 2034.");
        });
    }
}
