package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.keys.ApiKeyService;
import dev.llmrelay.gateway.ratelimit.RateLimitExceededException;
import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.ModelListings;
import dev.llmrelay.gateway.upstream.UpstreamModels;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import okhttp3.Response;

/**
 * Each stage of the {@link RequestPipeline} on its own, with the real collaborators of a gateway of this
 * test's own (the pool pinned at one slot, so shedding is reachable): what it decides, and how it refuses.
 */
class RequestStagesTest {

    private static final String MODEL = "smollm2-135m-instruct";

    @RegisterExtension
    final FreshGateway.PerTest gateway = FreshGateway.perTest(1, "--gateway.degrade.adaptive-limit=true", "--gateway.degrade.initial-limit=1",
            "--gateway.degrade.min-limit=1", "--gateway.degrade.max-limit=1");

    private final ObjectMapper mapper = new ObjectMapper();

    private ApiKey key(int requestsPerMinute) {
        String plaintext = gateway.get().newKey(requestsPerMinute, 1_000_000, 10);
        return gateway.get().bean(ApiKeyService.class).authenticate(plaintext).orElseThrow();
    }

    private GenerationRequest request(String json) throws Exception {
        return new GenerationRequest(GenerationEndpoint.CHAT, key(100), (ObjectNode) mapper.readTree(json), "r", null);
    }

    private GenerationRequest served(String extra) throws Exception {
        GenerationRequest request = request("{\"messages\":[{\"role\":\"user\",\"content\":\"Who are you?\"}]"
                + extra + "}");
        request.model = MODEL;
        return request;
    }

    private void admin(String method, String path, String json) throws Exception {
        try (Response response = gateway.get().admin(method, path, json)) {
            assertThat(response.code()).as(path).isEqualTo(200);
        }
    }

    private void listModel() {
        ModelListings.listEverywhere(gateway.get().bean(UpstreamModels.class), gateway.get().bean(UpstreamPool.class),
                MODEL, 8192);
    }

    @Test
    void routeGivesARequestWithoutModelTheModelItsPoolServesAndANamedOneItsOwnName() throws Exception {
        listModel();
        GenerationRequest unnamed = request("{\"messages\":[]}");
        gateway.get().bean(RouteStage.class).apply(unnamed);
        assertThat(unnamed.model).isEqualTo(MODEL);

        GenerationRequest unknown = request("{\"model\":\"gpt-4o\",\"messages\":[]}");
        // one pool serving any model: a named model is served as named (the 404 is RouteResolverTest's)
        gateway.get().bean(RouteStage.class).apply(unknown);
        assertThat(unknown.model).isEqualTo("gpt-4o");
    }

    @Test
    void pauseRefusesThePausedServedModelOnly() throws Exception {
        PauseStage pause = gateway.get().bean(PauseStage.class);
        pause.apply(served(""));
        admin("PATCH", "/admin/degradation", "{\"pausedModels\":{\"" + MODEL + "\":\"Back at noon.\"}}");
        assertThatThrownBy(() -> pause.apply(served(""))).isInstanceOfSatisfying(OpenAiException.class, e -> {
            assertThat(e.status()).isEqualTo(503);
            assertThat(e.code()).isEqualTo("model_paused");
            assertThat(e.getMessage()).isEqualTo("Back at noon.");
        });
        GenerationRequest other = served("");
        other.model = "another-model";
        pause.apply(other);
    }

    @Test
    void theCapLowersEveryBudgetFieldAndSetsOneWhenNoneIsGiven() throws Exception {
        MaxTokensCapStage cap = gateway.get().bean(MaxTokensCapStage.class);
        admin("PATCH", "/admin/degradation", "{\"maxTokensCap\":50}");
        GenerationRequest both = served(",\"max_tokens\":500,\"max_completion_tokens\":20");
        cap.apply(both);
        assertThat(both.body.get("max_tokens").asInt()).isEqualTo(50);
        assertThat(both.body.get("max_completion_tokens").asInt()).isEqualTo(20);
        GenerationRequest none = served("");
        cap.apply(none);
        assertThat(none.body.get("max_tokens").asInt()).isEqualTo(50);
    }

    @Test
    void keyLimitsAdmitWithinTheKeysRequestsAndRefuseBeyond() throws Exception {
        KeyLimitStage limits = gateway.get().bean(KeyLimitStage.class);
        ApiKey key = key(1);
        GenerationRequest first = new GenerationRequest(GenerationEndpoint.CHAT, key,
                (ObjectNode) mapper.readTree("{\"messages\":[]}"), "a", null);
        first.reservation = 10;
        limits.apply(first);
        assertThat(first.permit.headers()).containsEntry("X-RateLimit-Remaining", "0");
        GenerationRequest second = new GenerationRequest(GenerationEndpoint.CHAT, key,
                (ObjectNode) mapper.readTree("{\"messages\":[]}"), "b", null);
        second.reservation = 10;
        assertThatThrownBy(() -> limits.apply(second)).isInstanceOf(RateLimitExceededException.class);
        assertThat(second.permit).isNull();
        first.permit.finish(10);
    }

    @Test
    void sheddingTakesThePoolsOneSlotAndShedsTheNextUntilItIsGivenBack() throws Exception {
        SheddingStage shedding = gateway.get().bean(SheddingStage.class);
        GenerationRequest first = served("");
        shedding.apply(first);
        assertThat(first.route.model()).isEqualTo(MODEL);
        assertThat(first.route.fallbackFrom()).isNull();
        assertThatThrownBy(() -> shedding.apply(served(""))).isInstanceOfSatisfying(OpenAiException.class, e -> {
            assertThat(e.status()).isEqualTo(503);
            assertThat(e.code()).isEqualTo("overloaded");
            assertThat(e.headers()).containsKey("Retry-After");
        });
        first.route.slot().release();
        GenerationRequest third = served("");
        shedding.apply(third);
        third.route.slot().release();
    }

    @Test
    void theUpstreamBodyStreamsWithUsageAndCarriesTheServedModelsSystemPrompt() throws Exception {
        listModel();
        admin("PUT", "/admin/system-prompts/models/" + MODEL, "{\"prompt\":\"You are Relay.\"}");
        GenerationRequest request = served(",\"stream\":false,\"stream_options\":null");
        gateway.get().bean(SheddingStage.class).apply(request);
        gateway.get().bean(UpstreamRequestStage.class).apply(request);
        request.route.slot().release();
        JsonNode sent = mapper.readTree(request.upstreamBody);
        assertThat(sent.get("stream").asBoolean()).isTrue();
        assertThat(sent.path("stream_options").path("include_usage").asBoolean()).isTrue();
        assertThat(sent.get("messages")).isEqualTo(mapper.readTree(
                "[{\"role\":\"system\",\"content\":\"You are Relay.\"},{\"role\":\"user\",\"content\":\"Who are you?\"}]"));
        assertThat(request.body.get("stream").asBoolean()).as("the client's request is left as it was").isFalse();
        assertThat(List.of(request.body.path("messages").size())).containsExactly(1);
    }
}
