package dev.llmrelay.gateway.system;

import java.util.List;
import java.util.Map;

import io.swagger.v3.oas.annotations.media.ArraySchema;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.media.Schema.RequiredMode;

/**
 * Shapes of bodies the gateway writes or passes through without a Java type of its own, for the
 * OpenAPI document only: the two error shapes (written by {@link GatewayErrorAdvice}), stream events,
 * and the model-service answers relayed on {@code /v1}.
 */
public final class ApiSchemas {

    private ApiSchemas() {
    }

    @Schema(name = "OpenAiError", description = "OpenAI's error shape, on /v1")
    public record OpenAiError(@Schema(requiredMode = RequiredMode.REQUIRED) OpenAiErrorDetail error) {
    }

    @Schema(name = "OpenAiErrorDetail")
    public record OpenAiErrorDetail(
            @Schema(requiredMode = RequiredMode.REQUIRED) String message,
            @Schema(requiredMode = RequiredMode.REQUIRED, example = "invalid_request_error") String type,
            @Schema(requiredMode = RequiredMode.REQUIRED, types = {"string", "null"}) String param,
            @Schema(requiredMode = RequiredMode.REQUIRED, types = {"string", "null"},
                    example = "invalid_api_key") String code) {
    }

    @Schema(name = "Problem", description = "RFC 9457 problem details (application/problem+json), on /admin and "
            + "/api; some carry a machine-readable code")
    public record Problem(
            @Schema(example = "about:blank") String type,
            String title,
            @Schema(requiredMode = RequiredMode.REQUIRED) int status,
            String detail,
            String instance,
            @Schema(example = "upstream_unavailable") String code) {
    }

    /**
     * One event of a text/event-stream answer (OpenAPI before 3.2 describes an event stream by its
     * events): on /v1 {@code data} is a chat.completion.chunk, an error object, or {@code [DONE]}.
     */
    @Schema(name = "ServerSentEvent", description = "One event of a text/event-stream answer")
    public record ServerSentEvent(
            @Schema(description = "the event name; absent on /v1") String event,
            @Schema(description = "JSON text, or [DONE] at the end of a /v1 stream") String data,
            String id,
            @Schema(description = "reconnect delay in ms asked of EventSource") Integer retry) {
    }

    /**
     * What the gateway itself checks of a chat request (it routes and limits on these); every other
     * field goes to the model-service as sent, and the model-service validates it.
     */
    @Schema(name = "ChatCompletionRequest", description = "An OpenAI chat request. The gateway checks the fields "
            + "below; the rest (temperature, top_p, seed, stop...) is passed to the model-service, which validates "
            + "it and answers 400 for values it cannot use",
            additionalProperties = Schema.AdditionalPropertiesValue.TRUE,
            example = "{\"model\":\"smollm2-135m-instruct\",\"stream\":true,\"max_tokens\":64,"
                    + "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}")
    public record ChatCompletionRequest(
            @Schema(types = {"string", "null"}) String model,
            @ArraySchema(minItems = 1, arraySchema = @Schema(requiredMode = RequiredMode.REQUIRED))
            List<ChatMessage> messages,
            @Schema(types = {"boolean", "null"}) Boolean stream,
            @Schema(name = "max_tokens", types = {"integer", "null"}, minimum = "0", maximum = "2147483647")
            Integer maxTokens,
            @Schema(name = "max_completion_tokens", types = {"integer", "null"}, minimum = "0",
                    maximum = "2147483647") Integer maxCompletionTokens) {
    }

    @Schema(name = "ChatMessage", additionalProperties = Schema.AdditionalPropertiesValue.TRUE)
    public record ChatMessage(
            @Schema(requiredMode = RequiredMode.REQUIRED, example = "user") String role,
            @Schema(description = "text, or content parts; the model-service says what it accepts") Object content) {
    }

    @Schema(name = "ChatCompletion", description = "The model-service's non-streamed answer, relayed as it came "
            + "(OpenAI chat.completion)")
    public record ChatCompletion(
            @Schema(requiredMode = RequiredMode.REQUIRED) String id,
            @Schema(requiredMode = RequiredMode.REQUIRED, example = "chat.completion") String object,
            @Schema(requiredMode = RequiredMode.REQUIRED) long created,
            @Schema(requiredMode = RequiredMode.REQUIRED) String model,
            @Schema(requiredMode = RequiredMode.REQUIRED) List<Map<String, Object>> choices,
            @Schema(types = {"object", "null"}) Map<String, Object> usage) {
    }

    @Schema(name = "CompletionRequest", description = "An OpenAI legacy text completion request with one prompt. "
            + "The gateway checks the fields below; the rest (temperature, top_p, seed, stop, echo...) is passed to "
            + "the model-service, which validates it and answers 400 for values it cannot use",
            additionalProperties = Schema.AdditionalPropertiesValue.TRUE,
            example = "{\"model\":\"smollm2-135m-instruct\",\"prompt\":\"The capital of France is\","
                    + "\"max_tokens\":16}")
    public record CompletionRequest(
            @Schema(types = {"string", "null"}) String model,
            @Schema(requiredMode = RequiredMode.REQUIRED, description = "a string or token ids, alone or as a "
                    + "list of one", oneOf = {String.class, int[].class, String[].class, int[][].class}) Object prompt,
            @Schema(types = {"boolean", "null"}) Boolean stream,
            @Schema(name = "max_tokens", types = {"integer", "null"}, minimum = "0", maximum = "2147483647")
            Integer maxTokens) {
    }

    @Schema(name = "TextCompletion", description = "OpenAI text_completion, assembled from the model-service's "
            + "stream")
    public record TextCompletion(
            @Schema(requiredMode = RequiredMode.REQUIRED) String id,
            @Schema(requiredMode = RequiredMode.REQUIRED, example = "text_completion") String object,
            @Schema(requiredMode = RequiredMode.REQUIRED) long created,
            @Schema(requiredMode = RequiredMode.REQUIRED) String model,
            @Schema(requiredMode = RequiredMode.REQUIRED) List<Map<String, Object>> choices,
            @Schema(types = {"object", "null"}) Map<String, Object> usage) {
    }

    @Schema(name = "ModelList", description = "Models of the first upstream that answered (OpenAI list)")
    public record ModelList(
            @Schema(requiredMode = RequiredMode.REQUIRED, example = "list") String object,
            @Schema(requiredMode = RequiredMode.REQUIRED) List<Model> data) {
    }

    @Schema(name = "Model")
    public record Model(
            @Schema(requiredMode = RequiredMode.REQUIRED) String id,
            @Schema(example = "model") String object,
            Long created,
            @Schema(name = "owned_by") String ownedBy) {
    }
}
