package dev.llmrelay.gateway.conversation;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import mockwebserver3.MockResponse;

/**
 * Messages sent to one conversation at the same moment (two tabs, a double click): each send is
 * stored (200) or refused with a 409 problem, never a 500, and the stored history stays one user
 * message then its reply, in order. Runs on H2 and on PostgreSQL.
 */
class ConversationSendRaceTest extends GatewayTestSupport {

    private static final int SENDERS = 4;

    private final ExecutorService threads = Executors.newFixedThreadPool(SENDERS);
    private final ObjectMapper json = new ObjectMapper();
    private String cookie;

    @AfterEach
    void stopThreads() {
        threads.shutdownNow();
    }

    @Test
    void simultaneousSendsToOneConversationAre200Or409AndKeepTheHistoryInOrder() throws Exception {
        // each reply streams only once its round opens the gate: while one is streaming, every other
        // send of the round must be refused ("a reply is still being generated")
        AtomicReference<CountDownLatch> gate = new AtomicReference<>(new CountDownLatch(0));
        UPSTREAM_A.answer(r -> heldAnswer(gate.get()));
        UPSTREAM_B.answer(r -> heldAnswer(gate.get()));
        try (Response response = post("/api/session", "{\"apiKey\":\"" + newKey() + "\"}")) {
            assertThat(response.code()).isEqualTo(204);
            cookie = response.header("Set-Cookie").split(";", 2)[0];
        }
        JsonNode first;
        try (Response response = post("/api/chat/messages", "{\"content\":\"first\"}")) {
            assertThat(response.code()).isEqualTo(200);
            first = json.readTree(response.body().string());
        }
        String conversationId = first.path("conversationId").asText();
        follow(first.path("messageId").asText());

        int accepted = 1;
        for (int round = 0; round < 25; round++) {
            CountDownLatch release = new CountDownLatch(1);
            gate.set(release);
            CountDownLatch go = new CountDownLatch(1);
            List<Future<String[]>> answers = new ArrayList<>();
            for (int sender = 0; sender < SENDERS; sender++) {
                String body = "{\"conversationId\":\"" + conversationId + "\",\"content\":\"round " + round
                        + " sender " + sender + "\"}";
                answers.add(threads.submit(() -> {
                    go.await();
                    try (Response response = post("/api/chat/messages", body)) {
                        return new String[] {Integer.toString(response.code()), response.header("Content-Type"),
                                response.body().string()};
                    }
                }));
            }
            go.countDown();
            List<String> replies = new ArrayList<>();
            for (Future<String[]> answer : answers) {
                String[] status = answer.get(30, TimeUnit.SECONDS);
                assertThat(status[0]).as(status[2]).isIn("200", "409");
                if (status[0].equals("200")) {
                    replies.add(json.readTree(status[2]).path("messageId").asText());
                } else {
                    assertThat(status[1]).startsWith("application/problem+json");
                }
            }
            assertThat(replies).as("replies accepted in round " + round).hasSize(1);
            release.countDown();
            accepted += replies.size();
            for (String reply : replies) {
                follow(reply);
            }
        }

        List<Map<String, Object>> rows = jdbc.sql("SELECT seq, role, status FROM chat_message "
                + "WHERE conversation_id = ? ORDER BY seq").param(conversationId).query().listOfRows();
        assertThat(rows).hasSize(2 * accepted);
        int previous = 0;
        for (int i = 0; i < rows.size(); i++) {
            Map<String, Object> row = rows.get(i);
            assertThat(((Number) row.get("seq")).intValue()).isGreaterThan(previous);
            previous = ((Number) row.get("seq")).intValue();
            assertThat(row.get("role")).as("message " + i).isEqualTo(i % 2 == 0 ? "user" : "assistant");
            assertThat(row.get("status")).isEqualTo("complete");
        }
    }

    private static MockResponse heldAnswer(CountDownLatch release) {
        return new SseScript().await(release).event(SseScript.chunk("r", "ok", null))
                .event(SseScript.chunk("r", null, "stop")).event(SseScript.usageChunk("r", 5, 1)).done().response();
    }

    private Response post(String path, String body) throws Exception {
        Request.Builder request = new Request.Builder().url(url(path)).post(RequestBody.create(body, JSON));
        if (cookie != null) {
            request.header("Cookie", cookie);
        }
        return client.newCall(request.build()).execute();
    }

    /** Reads a reply's stream to its end (204 when it already ended), so the next send is not refused for it. */
    private void follow(String messageId) throws Exception {
        try (Response response = client.newCall(new Request.Builder()
                .url(url("/api/chat/messages/" + messageId + "/stream")).header("Cookie", cookie).build()).execute()) {
            assertThat(response.code()).isIn(200, 204);
            response.body().string();
        }
        awaitTrue("reply " + messageId + " stored as ended", () -> !"streaming".equals(jdbc.sql(
                "SELECT status FROM chat_message WHERE id = ?").param(messageId).query(String.class).single()));
    }
}
