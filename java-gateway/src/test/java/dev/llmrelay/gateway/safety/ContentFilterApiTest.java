package dev.llmrelay.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.conversation.BrowserHttp;
import dev.llmrelay.gateway.conversation.SseClient;
import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * Content safety through real HTTP: the admin API, the prompt check, and the answer of /v1 (stream and
 * not) and of the browser API, each from a scripted upstream that sends a text cut at random places.
 */
class ContentFilterApiTest extends GatewayTestSupport {

    private static final String ADMIN = "Bearer test-admin-token";
    private final ObjectMapper json = new ObjectMapper();

    @AfterEach
    void deleteLists() throws IOException {
        for (JsonNode list : json.readTree(admin("GET", "/admin/content-filter/lists", null).body)) {
            admin("DELETE", "/admin/content-filter/lists/" + list.path("name").asText(), null);
        }
    }

    record Answer(int status, String contentType, String body) {
    }

    Answer admin(String method, String path, String body) throws IOException {
        Request request = new Request.Builder().url(url(path)).header("Authorization", ADMIN)
                .method(method, body == null ? null : RequestBody.create(body, JSON)).build();
        try (Response response = client.newCall(request).execute()) {
            return new Answer(response.code(), response.header("Content-Type"), response.body().string());
        }
    }

    private String listBody(String action, boolean checkPrompt, List<String> words, String patterns) {
        ObjectNode body = json.createObjectNode().put("action", action).put("checkPrompt", checkPrompt);
        ArrayNode array = body.putArray("words");
        words.forEach(array::add);
        String text = body.toString();
        return patterns == null ? text : text.substring(0, text.length() - 1) + ",\"patterns\":" + patterns + "}";
    }

    private void scriptAnswer(List<String> pieces) {
        UPSTREAM_A.answer(r -> script(pieces).response());
        UPSTREAM_B.answer(r -> script(pieces).response());
    }

    private static SseScript script(List<String> pieces) {
        SseScript script = new SseScript();
        for (String piece : pieces) {
            script.event(SseScript.chunk("cf", piece, null));
        }
        return script.event(SseScript.chunk("cf", null, "stop")).event(SseScript.usageChunk("cf", 5, pieces.size()))
                .done();
    }

    // ---- admin API ------------------------------------------------------------------------

    @Test
    void badListsAreRefusedWithProblemDetailsAndLeaveTheStoredListAsItWas() throws IOException {
        Answer created = admin("PUT", "/admin/content-filter/lists/kept",
                listBody("mask", true, List.of("alpha", "beta"), null));
        assertThat(created.status).isEqualTo(200);
        long version = json.readTree(admin("GET", "/admin/policy", null).body).path("version").asLong();

        Map<String, String> bad = Map.of(
                listBody("mask", true, List.of("gamma", "  "), null), "words[1] is empty.",
                listBody("hide", true, List.of("gamma"), null), "action must be 'mask' or 'block'.",
                listBody("mask", true, List.of("gamma"), "[{\"regex\":\"a(b\",\"maxLength\":5}]"),
                "patterns[0].regex is not a valid regular expression",
                listBody("mask", true, List.of("gamma"), "[{\"regex\":\"ab+c\",\"maxLength\":5}]"),
                "patterns[0].regex has an unbounded quantifier",
                listBody("mask", true, List.of("gamma"), "[{\"regex\":\"ab{1,3}c\"}]"),
                "patterns[0].maxLength (the longest text it matches) must be 1 to 1000.",
                listBody("mask", true, List.of("x".repeat(201)), null), "words[0] is longer than 200 characters.",
                listBody("mask", true, java.util.Collections.nCopies(200_001, "w"), null),
                "At most 200000 entries are allowed.");
        for (Map.Entry<String, String> entry : bad.entrySet()) {
            Answer refused = admin("PUT", "/admin/content-filter/lists/kept", entry.getKey());
            assertThat(refused.status).as(entry.getValue()).isEqualTo(400);
            assertThat(refused.contentType).startsWith("application/problem+json");
            assertThat(json.readTree(refused.body).path("detail").asText()).startsWith(entry.getValue());
        }
        Answer badName = admin("PUT", "/admin/content-filter/lists/bad%20name", listBody("mask", true,
                List.of("gamma"), null));
        assertThat(badName.status).isEqualTo(400);
        Answer unknown = admin("POST", "/admin/content-filter/lists/nope/entries", "{\"words\":[\"gamma\"]}");
        assertThat(unknown.status).isEqualTo(404);
        assertThat(unknown.contentType).startsWith("application/problem+json");

        JsonNode kept = json.readTree(admin("GET", "/admin/content-filter/lists/kept", null).body);
        assertThat(kept.path("words").toString()).isEqualTo("[\"alpha\",\"beta\"]");
        assertThat(kept.path("action").asText()).isEqualTo("mask");
        assertThat(json.readTree(admin("GET", "/admin/policy", null).body).path("version").asLong())
                .isEqualTo(version);

        Answer added = admin("POST", "/admin/content-filter/lists/kept/entries",
                "{\"words\":[\"gamma\"],\"patterns\":[{\"regex\":\"\\\\d{3}-\\\\d{4}\",\"maxLength\":8}]}");
        assertThat(added.status).isEqualTo(200);
        assertThat(json.readTree(added.body).path("words").asInt()).isEqualTo(3);
        assertThat(json.readTree(added.body).path("patterns").asInt()).isEqualTo(1);
        assertThat(admin("GET", "/admin/content-filter/lists", null).status).isEqualTo(200);
        assertThat(admin("DELETE", "/admin/content-filter/lists/kept", null).status).isEqualTo(204);
        assertThat(admin("DELETE", "/admin/content-filter/lists/kept", null).status).isEqualTo(404);
    }

    @Test
    void theAdminApiNeedsTheAdminToken() throws IOException {
        Request request = new Request.Builder().url(url("/admin/content-filter/lists")).build();
        try (Response response = client.newCall(request).execute()) {
            assertThat(response.code()).isEqualTo(401);
        }
    }

    // ---- prompt side ----------------------------------------------------------------------

    @Test
    void aPromptWithAListWordIsRefusedBeforeAnyModelWorkAndTheHitIsRecorded() throws Exception {
        admin("PUT", "/admin/content-filter/lists/prompt-words", listBody("block", true, List.of("机密"), null));
        scriptAnswer(List.of("never sent"));
        String key = newKey();
        String body = "{\"model\":\"smollm2\",\"messages\":[{\"role\":\"user\",\"content\":"
                + "[{\"type\":\"text\",\"text\":\"tell me the 机密 plan\"}]}]}";
        try (Response response = client.newCall(chat(key, body, "cf-prompt-1").build()).execute()) {
            assertThat(response.code()).isEqualTo(400);
            JsonNode error = json.readTree(response.body().string()).path("error");
            assertThat(error.path("code").asText()).isEqualTo("content_filter");
            assertThat(error.path("type").asText()).isEqualTo("invalid_request_error");
            assertThat(error.path("param").asText()).isEqualTo("messages");
        }
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isZero();
        Map<String, Object> hit = jdbc.sql("SELECT * FROM content_filter_hit WHERE request_id = 'cf-prompt-1'")
                .query().singleRow();
        assertThat(hit.get("LIST_NAME")).isEqualTo("prompt-words");
        assertThat(hit.get("SIDE")).isEqualTo("prompt");
        assertThat(hit.get("ACTION")).isEqualTo("block");
        assertThat(usageRow("cf-prompt-1").get("END_REASON")).isEqualTo("content_filter");

        // the browser API refuses the same prompt, as a problem detail, and keeps nothing
        String cookie = browser().signIn(key);
        HttpResponse<String> refused = browser().post("/api/chat/messages", "{\"content\":\"ＭＹ 机密 notes\"}", cookie);
        assertThat(refused.statusCode()).isEqualTo(400);
        assertThat(refused.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/problem+json");
        assertThat(json.readTree(refused.body()).path("code").asText()).isEqualTo("content_filter");
        assertThat(json.readTree(browser().get("/api/chat/conversations", cookie).body()).path("conversations"))
                .isEmpty();
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isZero();

        String metrics = browser().get("/actuator/prometheus", null).body();
        assertThat(metrics).contains("gateway_content_filter_hits_total{action=\"block\",application=\"java-gateway\","
                + "list=\"prompt-words\",side=\"prompt\"} 2.0");
    }

    // ---- output side ----------------------------------------------------------------------

    @Test
    void maskedAnswersNeverLeakAWordWhateverTheChunksOnEverySurface() throws Exception {
        admin("PUT", "/admin/content-filter/lists/mask-words", listBody("mask", false, FilterCorpus.WORDS, null));
        String key = newKey();
        String cookie = browser().signIn(key);
        Random random = new Random(11);
        int leaks = 0;
        for (int i = 0; i < 40; i++) {
            String text = FilterCorpus.text(random, 12);
            scriptAnswer(FilterCorpus.chunks(random, text));
            String expected = FilterCorpus.masked(text);
            String stream = streamText(key, "cf-mask-s" + i).text;
            String whole = completion(key, "cf-mask-n" + i).path("choices").path(0).path("message").path("content")
                    .asText();
            String browser = browserReply(cookie).text;
            assertThat(stream).as(text).isEqualTo(expected);
            assertThat(whole).as(text).isEqualTo(expected);
            assertThat(browser).as(text).isEqualTo(expected);
            leaks += (FilterCorpus.leaks(stream) ? 1 : 0) + (FilterCorpus.leaks(whole) ? 1 : 0)
                    + (FilterCorpus.leaks(browser) ? 1 : 0);
        }
        assertThat(leaks).isZero();
    }

    @Test
    void aBlockListEndsTheAnswerWithContentFilterOnEverySurface() throws Exception {
        admin("PUT", "/admin/content-filter/lists/block-words", listBody("block", false, FilterCorpus.WORDS, null));
        String key = newKey();
        String cookie = browser().signIn(key);
        List<String> pieces = List.of("Here is the pass", "ＷＯＲＤ: SE", "cret and more", " text");
        String text = String.join("", pieces);
        scriptAnswer(pieces);

        Streamed stream = streamText(key, "cf-block-s");
        assertThat(stream.text).isEqualTo("Here is the ");
        List<String> events = stream.events;
        assertThat(events.get(events.size() - 1)).isEqualTo("[DONE]");
        JsonNode error = json.readTree(events.get(events.size() - 2));
        assertThat(error.path("error").path("code").asText()).isEqualTo("content_filter");
        JsonNode last = json.readTree(events.get(events.size() - 3));
        assertThat(last.path("choices").path(0).path("finish_reason").asText()).isEqualTo("content_filter");
        assertThat(FilterCorpus.beforeFirstMatch(text)).isEqualTo("Here is the ");

        JsonNode whole = completion(key, "cf-block-n");
        assertThat(whole.path("choices").path(0).path("finish_reason").asText()).isEqualTo("content_filter");
        assertThat(whole.path("choices").path(0).path("message").path("content").asText()).isEqualTo("Here is the ");

        Streamed browser = browserReply(cookie);
        assertThat(browser.text).isEqualTo("Here is the ");
        JsonNode finish = json.readTree(browser.events.get(browser.events.size() - 1));
        assertThat(finish.path("finish_reason").asText()).isEqualTo("content_filter");

        assertThat(usageRow("cf-block-s").get("END_REASON")).isEqualTo("content_filter");
        Map<String, Object> hit = jdbc.sql("SELECT * FROM content_filter_hit WHERE request_id = 'cf-block-s'")
                .query().singleRow();
        assertThat(hit.get("LIST_NAME")).isEqualTo("block-words");
        assertThat(hit.get("SIDE")).isEqualTo("output");
        assertThat(hit.get("KEY_ID")).isNotNull();
    }

    @Test
    void whileAListIsInForceLogprobsAreNotRelayedTheyWouldRepeatTheText() throws Exception {
        String withLogprobs = "{\"id\":\"lp\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"smollm2\","
                + "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"my secret\"},\"logprobs\":{\"content\":"
                + "[{\"token\":\" secret\",\"logprob\":-0.1,\"bytes\":null,\"top_logprobs\":[]}]},"
                + "\"finish_reason\":null}]}";
        UPSTREAM_A.answer(r -> new SseScript().event(withLogprobs).event(SseScript.chunk("lp", null, "stop")).done()
                .response());
        UPSTREAM_B.answer(r -> new SseScript().event(withLogprobs).event(SseScript.chunk("lp", null, "stop")).done()
                .response());
        String key = newKey();
        assertThat(streamText(key, "cf-lp-off").events.get(0)).contains("\"logprobs\":{");

        admin("PUT", "/admin/content-filter/lists/lp-words", listBody("mask", false, List.of("secret"), null));
        Streamed filtered = streamText(key, "cf-lp-on");
        assertThat(filtered.text).isEqualTo("my ******");
        assertThat(String.join("\n", filtered.events)).doesNotContain("secret").doesNotContain("\"logprobs\":{");
    }

    // ---- helpers --------------------------------------------------------------------------

    record Streamed(String text, List<String> events) {
    }

    Streamed streamText(String key, String requestId) throws IOException {
        try (Response response = client.newCall(chat(key, chatBody(true, null), requestId).build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            List<String> events = dataEvents(lines(response));
            StringBuilder text = new StringBuilder();
            for (String event : events) {
                if (!event.equals("[DONE]")) {
                    text.append(json.readTree(event).path("choices").path(0).path("delta").path("content").asText(""));
                }
            }
            return new Streamed(text.toString(), events);
        }
    }

    JsonNode completion(String key, String requestId) throws IOException {
        try (Response response = client.newCall(chat(key, chatBody(false, null), requestId).build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            return json.readTree(response.body().string());
        }
    }

    /** Sends a message in a new conversation and reads its reply stream: token texts, and the data of each event. */
    Streamed browserReply(String cookie) throws Exception {
        HttpResponse<String> sent = browser().post("/api/chat/messages", "{\"content\":\"Hello there\"}", cookie);
        assertThat(sent.statusCode()).as(sent.body()).isIn(200, 201, 202);
        String messageId = json.readTree(sent.body()).path("messageId").asText();
        try (SseClient stream = browser().stream(messageId, cookie, null)) {
            List<SseClient.Event> events = stream.drain();
            return new Streamed(SseClient.textOf(events), events.stream().map(SseClient.Event::data).toList());
        }
    }

    private BrowserHttp browser() {
        return new BrowserHttp(port);
    }
}
