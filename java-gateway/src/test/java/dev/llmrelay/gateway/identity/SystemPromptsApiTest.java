package dev.llmrelay.gateway.identity;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.time.LocalDate;
import java.time.ZoneOffset;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.conversation.BrowserHttp;
import dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges;
import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import dev.llmrelay.gateway.upstream.ModelListings;
import dev.llmrelay.gateway.upstream.UpstreamModels;
import mockwebserver3.RecordedRequest;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * System prompts through real HTTP: the admin API (bad input refused, nothing applied), and what the
 * scripted upstream receives from /v1 and the browser API once a prompt is set.
 */
class SystemPromptsApiTest extends GatewayTestSupport {

    private static final String ADMIN = "Bearer test-admin-token";
    private final ObjectMapper json = new ObjectMapper();

    @Autowired
    UpstreamModels models;

    record Answer(int status, String contentType, String body) {
    }

    @BeforeEach
    void listModel() {
        ModelListings.listEverywhere(models, pool, "smollm2", 2048);
        UPSTREAM_A.answer(r -> SseScript.answer("sp", 5, "Hi").response());
        UPSTREAM_B.answer(r -> SseScript.answer("sp", 5, "Hi").response());
    }

    @AfterEach
    void deletePrompts() throws IOException {
        for (JsonNode prompt : json.readTree(admin("GET", "/admin/system-prompts", null).body)) {
            admin("DELETE", "/admin/system-prompts/" + prompt.path("scope").asText() + "s/"
                    + prompt.path("target").asText(), null);
        }
        ModelListings.forgetAll(models);
    }

    Answer admin(String method, String path, String body) throws IOException {
        Request request = new Request.Builder().url(url(path)).header("Authorization", ADMIN)
                .method(method, body == null ? null : RequestBody.create(body, JSON)).build();
        try (Response response = client.newCall(request).execute()) {
            return new Answer(response.code(), response.header("Content-Type"), response.body().string());
        }
    }

    /** The messages the upstream received for the last chat request. */
    private JsonNode upstreamMessages() throws IOException {
        RecordedRequest last = null;
        for (var upstream : new dev.llmrelay.gateway.support.ScriptedUpstream[] {UPSTREAM_A, UPSTREAM_B}) {
            for (RecordedRequest r : upstream.requests()) {
                if (r.getUrl().encodedPath().equals("/v1/chat/completions")) {
                    last = r;
                }
            }
        }
        assertThat(last).isNotNull();
        return json.readTree(last.getBody().utf8()).path("messages");
    }

    private void ask(String key, String messages) throws IOException {
        UPSTREAM_A.answer(r -> SseScript.answer("sp", 5, "Hi").response());
        UPSTREAM_B.answer(r -> SseScript.answer("sp", 5, "Hi").response());
        String body = "{\"model\":\"smollm2\",\"messages\":" + messages + "}";
        try (Response response = client.newCall(chat(key, body, "sp-" + System.nanoTime()).build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
        }
    }

    @Test
    void badPromptsAreRefusedWithProblemDetailsAndChangeNothing() throws IOException {
        long version = json.readTree(admin("GET", "/admin/policy", null).body).path("version").asLong();
        Answer unknownModel = admin("PUT", "/admin/system-prompts/models/no-such-model", "{\"prompt\":\"You are X.\"}");
        assertThat(unknownModel.status).isEqualTo(400);
        assertThat(unknownModel.contentType).startsWith("application/problem+json");
        assertThat(json.readTree(unknownModel.body).path("detail").asText()).startsWith("Unknown model 'no-such-model'");
        assertThat(admin("PUT", "/admin/system-prompts/models/smollm2", "{\"prompt\":\"  \"}").status).isEqualTo(400);
        assertThat(admin("PUT", "/admin/system-prompts/models/smollm2", "{\"prompt\":\"x\",\"mode\":\"append\"}")
                .status).isEqualTo(400);
        assertThat(admin("PUT", "/admin/system-prompts/models/smollm2",
                "{\"prompt\":\"" + "x".repeat(20_001) + "\"}").status).isEqualTo(400);
        Answer unknownKey = admin("PUT", "/admin/system-prompts/keys/999999", "{\"prompt\":\"You are X.\"}");
        assertThat(unknownKey.status).isEqualTo(404);
        assertThat(unknownKey.contentType).startsWith("application/problem+json");
        assertThat(admin("DELETE", "/admin/system-prompts/models/smollm2", null).status).isEqualTo(404);
        assertThat(json.readTree(admin("GET", "/admin/system-prompts", null).body)).isEmpty();
        assertThat(json.readTree(admin("GET", "/admin/policy", null).body).path("version").asLong())
                .isEqualTo(version);
    }

    @Test
    void aModelPromptIsPrependedWithItsVariablesAndAKeyPromptWins() throws IOException {
        var created = keys.create(new KeyChanges("acme-support", 1000, 1_000_000, 100, null));
        String key = created.plaintext();
        Answer put = admin("PUT", "/admin/system-prompts/models/smollm2",
                "{\"prompt\":\"You are Zephyr ({model}) for {key_name}. Today is {date}.\"}");
        assertThat(put.status).isEqualTo(200);
        assertThat(json.readTree(put.body).path("mode").asText()).isEqualTo("prepend");

        ask(key, "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Who are you?\"}]");
        JsonNode messages = upstreamMessages();
        String today = LocalDate.now(ZoneOffset.UTC).toString();
        assertThat(messages.toString()).isEqualTo("[{\"role\":\"system\",\"content\":\"You are Zephyr (smollm2) for "
                + "acme-support. Today is " + today + ".\"},{\"role\":\"system\",\"content\":\"Be brief.\"},"
                + "{\"role\":\"user\",\"content\":\"Who are you?\"}]");

        Answer own = admin("PUT", "/admin/system-prompts/keys/" + created.key().id(),
                "{\"prompt\":\"You are Mistral-for-{key_name}.\",\"mode\":\"replace\"}");
        assertThat(own.status).isEqualTo(200);
        ask(key, "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Who are you?\"}]");
        assertThat(upstreamMessages().toString()).isEqualTo("[{\"role\":\"system\",\"content\":"
                + "\"You are Mistral-for-acme-support.\"},{\"role\":\"user\",\"content\":\"Who are you?\"}]");

        // another key still gets the model's prompt
        ask(newKey(), "[{\"role\":\"user\",\"content\":\"Who are you?\"}]");
        assertThat(upstreamMessages().path(0).path("content").asText()).startsWith("You are Zephyr (smollm2) for test.");
    }

    @Test
    void theBrowserApiGetsTheAnyModelPrompt() throws Exception {
        assertThat(admin("PUT", "/admin/system-prompts/models/*", "{\"prompt\":\"You are Zephyr.\"}").status)
                .isEqualTo(200);
        BrowserHttp browser = new BrowserHttp(port);
        String cookie = browser.signIn(newKey());
        assertThat(browser.post("/api/chat/messages", "{\"content\":\"Who are you?\"}", cookie).statusCode())
                .isBetween(200, 202);
        awaitTrue("the upstream got the browser's request",
                () -> UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests() == 1);
        assertThat(upstreamMessages().toString()).isEqualTo("[{\"role\":\"system\",\"content\":\"You are Zephyr.\"},"
                + "{\"role\":\"user\",\"content\":\"Who are you?\"}]");
    }
}
