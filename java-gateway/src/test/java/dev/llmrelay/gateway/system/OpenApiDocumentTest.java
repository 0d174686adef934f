package dev.llmrelay.gateway.system;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import okhttp3.Request;
import okhttp3.Response;

/**
 * /v3/api-docs says what the routes really answer: media types, statuses, fields that can be null, the
 * error shape of each surface, and the browser session as a cookie. (Schemathesis checks real answers
 * against it from outside; this pins what the document states.)
 */
class OpenApiDocumentTest extends GatewayTestSupport {

    @Autowired
    ObjectMapper json;

    private JsonNode doc;

    @BeforeEach
    void fetch() throws Exception {
        try (Response response = client.newCall(new Request.Builder().url(url("/v3/api-docs")).build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            doc = json.readTree(response.body().string());
        }
    }

    private JsonNode operation(String path, String method) {
        JsonNode operation = doc.path("paths").path(path).path(method);
        assertThat(operation.isObject()).as(method + " " + path).isTrue();
        return operation;
    }

    private List<String> types(String schema, String property) {
        JsonNode type = doc.path("components").path("schemas").path(schema).path("properties").path(property)
                .path("type");
        List<String> types = new ArrayList<>();
        if (type.isArray()) {
            type.forEach(t -> types.add(t.asText()));
        } else {
            types.add(type.asText());
        }
        return types;
    }

    @Test
    void textCompletionsDocumentsItsPromptAndAnswers() {
        JsonNode operation = operation("/v1/completions", "post");
        JsonNode ok = operation.path("responses").path("200").path("content");
        assertThat(ok.path("application/json").path("schema").path("$ref").asText())
                .isEqualTo("#/components/schemas/TextCompletion");
        assertThat(ok.path("text/event-stream").path("schema").path("$ref").asText())
                .isEqualTo("#/components/schemas/ServerSentEvent");
        assertThat(operation.path("responses").path("default").path("content").path("application/json")
                .path("schema").path("$ref").asText()).isEqualTo("#/components/schemas/OpenAiError");
        JsonNode prompt = doc.path("components").path("schemas").path("CompletionRequest").path("properties")
                .path("prompt");
        List<String> shapes = new ArrayList<>();
        prompt.path("oneOf").forEach(shape -> shapes.add(shape.path("type").asText() + "/"
                + shape.path("items").path("type").asText() + "/" + shape.path("items").path("items").path("type")
                        .asText()));
        assertThat(shapes).containsExactly("string//", "array/integer/", "array/string/", "array/array/integer");
    }

    @Test
    void chatCompletionsAnswersJsonOrAnEventStreamNotAnEmitterObject() {
        JsonNode ok = operation("/v1/chat/completions", "post").path("responses").path("200").path("content");
        assertThat(ok.has("application/json")).isTrue();
        assertThat(ok.path("text/event-stream").path("schema").path("$ref").asText())
                .isEqualTo("#/components/schemas/ServerSentEvent");
        assertThat(ok.path("application/json").path("schema").path("$ref").asText())
                .isEqualTo("#/components/schemas/ChatCompletion");
        assertThat(operation("/v1/models", "get").path("responses").path("200").path("content")
                .path("application/json").path("schema").path("$ref").asText())
                .isEqualTo("#/components/schemas/ModelList");
        assertThat(doc.toString()).doesNotContain("ResponseBodyEmitter").doesNotContain("\"*/*\"");
    }

    @Test
    void fieldsThatAreNullInRealAnswersAreDocumentedNullable() {
        for (String field : List.of("keyId", "upstream", "model", "ttftMs")) {
            assertThat(types("UsageRecord", field)).as("UsageRecord." + field).contains("null");
        }
        assertThat(types("UsageRecord", "requestId")).doesNotContain("null");
        assertThat(types("UsageRecord", "requestCount")).containsExactly("integer");
        for (String field : List.of("keyId", "keyName")) {
            assertThat(types("KeyTotals", field)).as("KeyTotals." + field).contains("null");
        }
        for (String field : List.of("finishReason", "error", "promptTokens", "completionTokens", "followable")) {
            assertThat(types("MessageView", field)).as("MessageView." + field).contains("null");
        }
    }

    @Test
    void everyOperationDocumentsItsSurfacesErrorShape() {
        doc.path("paths").properties().forEach(path -> path.getValue().properties().forEach(method -> {
            String what = method.getKey() + " " + path.getKey();
            JsonNode errors = method.getValue().path("responses").path("default").path("content");
            if (path.getKey().startsWith("/v1/")) {
                assertThat(errors.path("application/json").path("schema").path("$ref").asText()).as(what)
                        .isEqualTo("#/components/schemas/OpenAiError");
            } else {
                assertThat(errors.path("application/problem+json").path("schema").path("$ref").asText()).as(what)
                        .isEqualTo("#/components/schemas/Problem");
            }
        }));
        assertThat(doc.path("components").path("schemas").path("OpenAiError").path("required").toString())
                .contains("error");
    }

    @Test
    void statusesAreTheOnesAnswered() {
        Map<String, String> expected = Map.of(
                "post /admin/keys", "201", "delete /admin/keys/{id}", "204", "post /api/session", "204",
                "delete /api/session", "204", "post /api/chat/messages/{messageId}/cancel", "204",
                "delete /api/chat/conversations/{id}", "204");
        expected.forEach((route, status) -> {
            String[] parts = route.split(" ");
            JsonNode responses = operation(parts[1], parts[0]).path("responses");
            assertThat(responses.has(status)).as(route + " documents " + status).isTrue();
            assertThat(responses.has("200")).as(route + " answers no 200").isFalse();
        });
        JsonNode stream = operation("/api/chat/messages/{messageId}/stream", "get").path("responses");
        assertThat(stream.path("200").path("content").has("text/event-stream")).isTrue();
        assertThat(stream.has("204")).isTrue();
    }

    @Test
    void theBrowserSessionIsACookieNotAQueryParameter() {
        JsonNode scheme = doc.path("components").path("securitySchemes").path("browserSession");
        assertThat(scheme.path("type").asText()).isEqualTo("apiKey");
        assertThat(scheme.path("in").asText()).isEqualTo("cookie");
        assertThat(scheme.path("name").asText()).isEqualTo("relay_session");
        doc.path("paths").properties().forEach(path -> path.getValue().properties().forEach(method -> {
            String what = method.getKey() + " " + path.getKey();
            for (JsonNode parameter : method.getValue().path("parameters")) {
                assertThat(parameter.path("name").asText()).as(what).isNotEqualTo("session");
            }
            boolean signedIn = path.getKey().startsWith("/api/") && !path.getKey().equals("/api/session");
            if (signedIn) {
                assertThat(method.getValue().path("security").toString()).as(what).contains("browserSession");
            }
        }));
        assertThat(doc.path("components").path("schemas").has("BrowserSession")).isFalse();
    }
}
