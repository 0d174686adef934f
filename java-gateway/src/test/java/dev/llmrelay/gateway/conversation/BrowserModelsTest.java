package dev.llmrelay.gateway.conversation;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.http.HttpResponse;
import java.util.List;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.support.ScriptedUpstream;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;

/**
 * The browser API's model per conversation (issue 18): the page's picker lists the models the pools serve
 * ({@code GET /api/chat/models}), a message names one, the conversation remembers it, and its replies go
 * to that model's pool. Each test has a gateway of its own in front of its own scripted upstreams.
 */
class BrowserModelsTest {

    private static final String SMOLLM = "smollm2-135m-instruct";
    private static final String QWEN = "qwen2.5-coder-0.5b-instruct";

    private final ObjectMapper json = new ObjectMapper();

    private static void serves(ScriptedUpstream upstream, String model, String answer) {
        upstream.answer(r -> switch (r.getUrl().encodedPath()) {
            case "/health" -> new MockResponse.Builder().body("{\"status\":\"ok\"}").build();
            case "/v1/models" -> new MockResponse.Builder().body("{\"object\":\"list\",\"data\":[{\"id\":\"" + model
                    + "\",\"object\":\"model\",\"max_model_len\":8192}]}").build();
            case "/v1/chat/completions" -> SseScript.answer("r", 3, answer).response();
            default -> new MockResponse.Builder().code(404).build();
        });
    }


    private JsonNode body(RecordedRequest request) throws Exception {
        return json.readTree(request.getBody().utf8());
    }

    /** Sends and waits until the reply is stored as complete; the conversation's detail. */
    private JsonNode sendAndWait(BrowserHttp browser, String cookie, String body) throws Exception {
        HttpResponse<String> sent = browser.post("/api/chat/messages", body, cookie);
        assertThat(sent.statusCode()).as(sent.body()).isEqualTo(200);
        String conversationId = json.readTree(sent.body()).path("conversationId").asText();
        for (int i = 0; i < 200; i++) {
            JsonNode detail = json.readTree(browser.get("/api/chat/conversations/" + conversationId, cookie).body());
            JsonNode messages = detail.path("messages");
            if ("complete".equals(messages.get(messages.size() - 1).path("status").asText())) {
                return detail;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("the reply did not complete");
    }

    @Test
    void aConversationKeepsTheModelItWasStartedWithAndSwitchesWhenAMessageNamesAnother() throws Exception {
        try (FreshGateway gateway = FreshGateway.startPools(java.util.Arrays.asList(SMOLLM, QWEN))) {
            serves(gateway.upstream(0), SMOLLM, "english");
            serves(gateway.upstream(1), QWEN, "中文");
            BrowserHttp browser = new BrowserHttp(gateway.port());
            String cookie = browser.signIn(gateway.newKey());

            HttpResponse<String> offered = browser.get("/api/chat/models", cookie);
            assertThat(offered.statusCode()).as(offered.body()).isEqualTo(200);
            JsonNode models = json.readTree(offered.body());
            assertThat(models.path("models").findValuesAsText("id")).containsExactly(SMOLLM, QWEN);
            assertThat(models.path("default").asText()).isEqualTo(SMOLLM);

            JsonNode started = sendAndWait(browser, cookie, "{\"content\":\"你好\",\"model\":\"" + QWEN + "\"}");
            String id = started.path("id").asText();
            assertThat(started.path("model").asText()).isEqualTo(QWEN);
            assertThat(started.path("messages").get(1).path("content").asText()).isEqualTo("中文");
            assertThat(gateway.upstream(0).chats()).isEmpty();
            assertThat(gateway.upstream(1).chats()).hasSize(1);
            assertThat(body(gateway.upstream(1).chats().get(0)).path("model").asText()).isEqualTo(QWEN);

            // no model named: the conversation's own
            JsonNode remembered = sendAndWait(browser, cookie, "{\"conversationId\":\"" + id + "\",\"content\":\"再说一次\"}");
            assertThat(remembered.path("model").asText()).isEqualTo(QWEN);
            assertThat(gateway.upstream(0).chats()).isEmpty();
            assertThat(gateway.upstream(1).chats()).hasSize(2);

            // another model named: the conversation switches, and its history goes with it
            JsonNode switched = sendAndWait(browser, cookie,
                    "{\"conversationId\":\"" + id + "\",\"content\":\"in English\",\"model\":\"" + SMOLLM + "\"}");
            assertThat(switched.path("model").asText()).isEqualTo(SMOLLM);
            assertThat(switched.path("messages").get(5).path("content").asText()).isEqualTo("english");
            assertThat(gateway.upstream(0).chats()).hasSize(1);
            JsonNode request = body(gateway.upstream(0).chats().get(0));
            assertThat(request.path("model").asText()).isEqualTo(SMOLLM);
            assertThat(request.path("messages").findValuesAsText("content"))
                    .containsExactly("你好", "中文", "再说一次", "中文", "in English");

            JsonNode list = json.readTree(browser.get("/api/chat/conversations", cookie).body()).path("conversations");
            assertThat(list).hasSize(1);
            assertThat(list.get(0).path("model").asText()).isEqualTo(SMOLLM);

            // a new conversation without a model: the default, stored as none chosen
            JsonNode plain = sendAndWait(browser, cookie, "{\"content\":\"hi\"}");
            assertThat(plain.path("model").isNull()).isTrue();
            assertThat(gateway.upstream(0).chats()).hasSize(2);
            assertThat(body(gateway.upstream(0).chats().get(1)).path("model").asText()).isEqualTo(SMOLLM);
            assertThat(gateway.upstream(1).chats()).hasSize(2);
        }
    }

    @Test
    void anUnknownModelIs404ModelNotFoundAndNothingIsStoredOrChanged() throws Exception {
        try (FreshGateway gateway = FreshGateway.startPools(java.util.Arrays.asList(SMOLLM, QWEN))) {
            serves(gateway.upstream(0), SMOLLM, "english");
            serves(gateway.upstream(1), QWEN, "中文");
            BrowserHttp browser = new BrowserHttp(gateway.port());
            String cookie = browser.signIn(gateway.newKey());

            HttpResponse<String> refused = browser.post("/api/chat/messages", "{\"content\":\"hi\",\"model\":\"gpt-4o\"}", cookie);
            assertThat(refused.statusCode()).isEqualTo(404);
            assertThat(refused.headers().firstValue("Content-Type").orElse("")).startsWith("application/problem+json");
            JsonNode problem = json.readTree(refused.body());
            assertThat(problem.path("code").asText()).isEqualTo("model_not_found");
            assertThat(problem.path("detail").asText()).contains("gpt-4o");
            assertThat(json.readTree(browser.get("/api/chat/conversations", cookie).body()).path("conversations")).isEmpty();

            JsonNode started = sendAndWait(browser, cookie, "{\"content\":\"hi\",\"model\":\"" + QWEN + "\"}");
            String id = started.path("id").asText();
            for (String model : new String[] {"\"gpt-4o\"", "\"\"", "\" \""}) {
                HttpResponse<String> again = browser.post("/api/chat/messages",
                        "{\"conversationId\":\"" + id + "\",\"content\":\"more\",\"model\":" + model + "}", cookie);
                assertThat(again.statusCode()).as(model + ": " + again.body()).isEqualTo(model.equals("\"gpt-4o\"") ? 404 : 400);
            }
            JsonNode after = json.readTree(browser.get("/api/chat/conversations/" + id, cookie).body());
            assertThat(after.path("model").asText()).isEqualTo(QWEN);
            assertThat(after.path("messages")).hasSize(2);
            assertThat(gateway.upstream(0).chats()).isEmpty();
            assertThat(gateway.upstream(1).chats()).hasSize(1);
        }
    }

    @Test
    void aRefusedMessageDoesNotSwitchTheConversationsModel() throws Exception {
        try (FreshGateway gateway = FreshGateway.startPools(java.util.Arrays.asList(SMOLLM, QWEN))) {
            serves(gateway.upstream(0), SMOLLM, "english");
            serves(gateway.upstream(1), QWEN, "中文");
            BrowserHttp browser = new BrowserHttp(gateway.port());
            String cookie = browser.signIn(gateway.newKey(1, 1_000_000, 10)); // one request a minute
            String id = sendAndWait(browser, cookie, "{\"content\":\"hi\",\"model\":\"" + QWEN + "\"}").path("id").asText();

            HttpResponse<String> refused = browser.post("/api/chat/messages",
                    "{\"conversationId\":\"" + id + "\",\"content\":\"more\",\"model\":\"" + SMOLLM + "\"}", cookie);
            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
            JsonNode after = json.readTree(browser.get("/api/chat/conversations/" + id, cookie).body());
            assertThat(after.path("model").asText()).isEqualTo(QWEN);
            assertThat(after.path("messages")).hasSize(2);
            assertThat(gateway.upstream(0).chats()).isEmpty();
        }
    }

    @Test
    void theDefaultPoolOffersTheModelItsReplicaListsAndAConversationWithoutOneSendsNone() throws Exception {
        try (FreshGateway gateway = FreshGateway.startPools(java.util.Collections.singletonList(null),
                "--gateway.health.interval=100ms")) {
            serves(gateway.upstream(0), SMOLLM, "fine");
            BrowserHttp browser = new BrowserHttp(gateway.port());
            String cookie = browser.signIn(gateway.newKey());
            JsonNode models = null;
            for (int i = 0; i < 100; i++) { // until the probe has read the replica's /v1/models
                models = json.readTree(browser.get("/api/chat/models", cookie).body());
                if (models.path("models").size() > 0) {
                    break;
                }
                Thread.sleep(50);
            }
            assertThat(models.path("models").findValuesAsText("id")).containsExactly(SMOLLM);
            assertThat(models.path("default").asText()).isEqualTo(SMOLLM);

            JsonNode plain = sendAndWait(browser, cookie, "{\"content\":\"hi\"}");
            assertThat(plain.path("model").isNull()).isTrue();
            JsonNode named = sendAndWait(browser, cookie, "{\"content\":\"hi\",\"model\":\"" + SMOLLM + "\"}");
            assertThat(named.path("model").asText()).isEqualTo(SMOLLM);
            List<RecordedRequest> chats = gateway.upstream(0).chats();
            assertThat(chats).hasSize(2);
            assertThat(body(chats.get(0)).has("model")).isFalse();
            assertThat(body(chats.get(1)).path("model").asText()).isEqualTo(SMOLLM);
        }
    }
}
