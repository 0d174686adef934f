package dev.llmrelay.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.jdbc.core.simple.JdbcClient;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.support.SseScript;
import dev.llmrelay.gateway.usage.UsageRecorder;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;
import okhttp3.Response;

/**
 * Token budgets through the admin API and /v1 on one gateway (memory store): set, shown, removed, refused
 * when malformed (nothing half-applied), enforced by lowering max_tokens to what is left, 429
 * insufficient_quota once spent, and {@code used} equal to the usage rows. A gateway of each test's own.
 */
class BudgetApiTest {

    @RegisterExtension
    final FreshGateway.PerTest gateway = FreshGateway.perTest(1);

    private final ObjectMapper json = new ObjectMapper();

    /** An upstream that writes exactly max_tokens tokens (the most a budget lets through) with 7 prompt tokens. */
    static MockResponse obeyingMaxTokens(RecordedRequest request, ObjectMapper json) {
        try {
            int max = json.readTree(request.getBody().utf8()).path("max_tokens").asInt(50);
            String[] tokens = new String[max];
            java.util.Arrays.fill(tokens, "x");
            return SseScript.answer("r", 7, tokens).response();
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private JsonNode admin(String method, String path, String body, int expectedStatus) throws Exception {
        try (Response response = gateway.get().admin(method, path, body)) {
            String text = response.body().string();
            assertThat(response.code()).as(text).isEqualTo(expectedStatus);
            return text.isEmpty() ? null : json.readTree(text);
        }
    }

    @Test
    void aBudgetIsSetShownAndRemovedWithItsUseAndReset() throws Exception {
        JsonNode created = admin("POST", "/admin/keys", "{\"name\":\"b\",\"budget\":{\"tokens\":5000,\"period\":\"day\"}}", 201);
        long id = created.path("id").asLong();
        JsonNode budget = created.path("budget");
        assertThat(budget.path("tokens").asLong()).isEqualTo(5000);
        assertThat(budget.path("period").asText()).isEqualTo("day");
        assertThat(budget.path("used").asLong()).isZero();
        assertThat(budget.path("remaining").asLong()).isEqualTo(5000);
        Instant midnight = Instant.now().truncatedTo(ChronoUnit.DAYS).plus(1, ChronoUnit.DAYS);
        assertThat(Instant.parse(budget.path("resetsAt").asText())).isEqualTo(midnight);

        JsonNode monthly = admin("PATCH", "/admin/keys/" + id, "{\"budget\":{\"tokens\":9000,\"period\":\"month\"}}", 200);
        assertThat(monthly.path("budget").path("period").asText()).isEqualTo("month");
        assertThat(monthly.path("budget").path("tokens").asLong()).isEqualTo(9000);
        JsonNode total = admin("PATCH", "/admin/keys/" + id, "{\"budget\":{\"tokens\":7,\"period\":\"total\"}}", 200);
        assertThat(total.path("budget").path("resetsAt").isNull()).isTrue();
        // a change of other members keeps the budget
        assertThat(admin("PATCH", "/admin/keys/" + id, "{\"name\":\"renamed\"}", 200).path("budget").path("tokens").asLong())
                .isEqualTo(7);
        JsonNode removed = admin("PATCH", "/admin/keys/" + id, "{\"budget\":null}", 200);
        assertThat(removed.has("budget")).isFalse();
        assertThat(admin("GET", "/admin/keys/" + id, null, 200).has("budget")).isFalse();
    }

    @Test
    void everyMalformedBudgetIs400AndChangesNothing() throws Exception {
        long id = admin("POST", "/admin/keys", "{\"name\":\"b\",\"requestsPerMinute\":10,\"budget\":{\"tokens\":100,\"period\":\"day\"}}", 201)
                .path("id").asLong();
        long keysBefore = gateway.get().bean(JdbcClient.class).sql("SELECT COUNT(*) FROM api_key").query(Long.class).single();
        List<String> bad = List.of(
                "{\"tokens\":-5,\"period\":\"day\"}", "{\"tokens\":0,\"period\":\"day\"}",
                "{\"tokens\":1.5,\"period\":\"day\"}", "{\"tokens\":\"100\",\"period\":\"day\"}",
                "{\"tokens\":100,\"period\":\"week\"}", "{\"tokens\":100,\"period\":\"DAY\"}", "{\"tokens\":100}",
                "{\"period\":\"day\"}", "{\"tokens\":100,\"period\":\"day\",\"currency\":\"USD\"}", "[100,\"day\"]", "100",
                "{\"tokens\":10000000000000000000,\"period\":\"day\"}");
        for (String budget : bad) {
            JsonNode problem = admin("PATCH", "/admin/keys/" + id, "{\"requestsPerMinute\":99,\"budget\":" + budget + "}", 400);
            assertThat(problem.path("status").asInt()).as(budget).isEqualTo(400);
            assertThat(problem.path("detail").asText()).as(budget).containsAnyOf("budget", "Unknown member");
            admin("POST", "/admin/keys", "{\"name\":\"new\",\"budget\":" + budget + "}", 400);
        }
        JsonNode after = admin("GET", "/admin/keys/" + id, null, 200);
        assertThat(after.path("requestsPerMinute").asInt()).isEqualTo(10);
        assertThat(after.path("budget").path("tokens").asLong()).isEqualTo(100);
        assertThat(after.path("budget").path("period").asText()).isEqualTo("day");
        assertThat(gateway.get().bean(JdbcClient.class).sql("SELECT COUNT(*) FROM api_key").query(Long.class).single())
                .isEqualTo(keysBefore);
    }

    @Test
    void requestsAreCappedToWhatIsLeftThenRefusedWithInsufficientQuotaAndUseEqualsTheRows() throws Exception {
        FreshGateway gw = gateway.get();
        gw.upstream().answer(r -> r.getUrl().encodedPath().equals("/v1/chat/completions")
                ? obeyingMaxTokens(r, json) : new MockResponse.Builder().code(404).build());
        JsonNode created = admin("POST", "/admin/keys", "{\"name\":\"b\",\"budget\":{\"tokens\":1000,\"period\":\"day\"}}", 201);
        String key = created.path("key").asText();
        long id = created.path("id").asLong();
        String body = "{\"stream\":true,\"max_tokens\":300,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
        List<Integer> asked = new java.util.ArrayList<>();
        int served = 0;
        JsonNode refusal = null;
        for (int i = 0; i < 20 && refusal == null; i++) {
            try (Response response = gw.post("/v1/chat/completions", key, body)) {
                String text = response.body().string();
                if (response.code() == 429) {
                    refusal = json.readTree(text).path("error");
                    assertThat(Long.parseLong(response.header("Retry-After")))
                            .isBetween(1L, 86_401L);
                } else {
                    assertThat(response.code()).as(text).isEqualTo(200);
                    served++;
                }
            }
        }
        for (RecordedRequest r : gw.upstream().requests()) {
            asked.add(json.readTree(r.getBody().utf8()).path("max_tokens").asInt());
        }
        assertThat(refusal).isNotNull();
        assertThat(refusal.path("type").asText()).isEqualTo("insufficient_quota");
        assertThat(refusal.path("code").asText()).isEqualTo("insufficient_quota");
        assertThat(refusal.path("message").asText()).contains("of 1000 tokens used this day (UTC)");
        // admission holds the prompt's upper bound (the upstream body's bytes + 64, about 180 here) plus
        // max_tokens; an answer uses 7 prompt tokens + its max_tokens: two fit in full, the third gets what is left
        assertThat(asked).hasSize(3);
        assertThat(asked.subList(0, 2)).containsExactly(300, 300);
        assertThat(asked.get(2)).isBetween(150, 299);
        assertThat(served).isEqualTo(3);

        gw.bean(UsageRecorder.class).flush();
        long rows = gw.bean(JdbcClient.class).sql("SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) "
                + "FROM usage_record WHERE key_id = ?").param(id).query(Long.class).single();
        JsonNode budget = admin("GET", "/admin/keys/" + id, null, 200).path("budget");
        assertThat(budget.path("used").asLong()).isEqualTo(rows).isLessThanOrEqualTo(1000);
        assertThat(rows).isEqualTo(3 * 7 + 300 + 300 + asked.get(2));
        assertThat(1000 - rows).isLessThan(200); // too little for another request's bound
        assertThat(budget.path("remaining").asLong()).isEqualTo(1000 - rows);
        List<String> reasons = gw.bean(JdbcClient.class).sql("SELECT end_reason FROM usage_record WHERE key_id = ? "
                + "AND http_status = 429").param(id).query(String.class).list();
        assertThat(reasons).containsExactly("budget_exhausted");
    }

    @Test
    void aClientThatLeavesMidStreamIsBilledExactlyForWhatWasRelayed() throws Exception {
        FreshGateway gw = gateway.get();
        SseScript endless = new SseScript().tokensUntilClosed("r");
        gw.upstream().answer(r -> endless.response());
        JsonNode created = admin("POST", "/admin/keys", "{\"name\":\"b\",\"budget\":{\"tokens\":100000,\"period\":\"total\"}}", 201);
        long id = created.path("id").asLong();
        try (Response response = gw.post("/v1/chat/completions", created.path("key").asText(),
                "{\"stream\":true,\"max_tokens\":5000,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}")) {
            assertThat(response.code()).isEqualTo(200);
            okio.BufferedSource source = response.body().source();
            for (int events = 0; events < 10; ) {
                String line = source.readUtf8LineStrict();
                if (line.startsWith("data: ")) {
                    events++;
                }
            }
        } // the client leaves: the gateway cancels the upstream
        assertThat(endless.upstreamSocketClosed.await(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        JdbcClient jdbc = gw.bean(JdbcClient.class);
        long rows = 0;
        for (int i = 0; i < 100; i++) { // the stream's end is recorded once the gateway saw the client go
            gw.bean(UsageRecorder.class).flush();
            Long sum = jdbc.sql("SELECT SUM(prompt_tokens + completion_tokens) FROM usage_record WHERE key_id = ?")
                    .param(id).query(Long.class).single();
            if (sum != null) {
                rows = sum;
                break;
            }
            Thread.sleep(50);
        }
        assertThat(rows).isGreaterThanOrEqualTo(10);
        assertThat(admin("GET", "/admin/keys/" + id, null, 200).path("budget").path("used").asLong()).isEqualTo(rows);
        assertThat(jdbc.sql("SELECT end_reason FROM usage_record WHERE key_id = ?").param(id).query(String.class).list())
                .containsExactly("client_cancelled");
    }
}
