package dev.llmrelay.gateway.keys;

import static org.assertj.core.api.Assertions.assertThat;


import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.jdbc.core.simple.JdbcClient;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges;
import dev.llmrelay.gateway.support.FreshGateway;
import okhttp3.Response;

/**
 * A key change with a member the admin API does not know (a misspelt limit) is refused whole, as the
 * degradation PATCH refuses one: 400 problem naming the member, nothing created or changed. Before, the
 * member was dropped and the key got the defaults. A gateway of this test's own ({@link FreshGateway}).
 */
class AdminKeysMembersTest {

    private static final String KNOWN = "[allowFallback, budget, enabled, maxConcurrentStreams, name, requestsPerMinute, "
            + "tokensPerMinute]";

    private final ObjectMapper mapper = new ObjectMapper();
    private FreshGateway gateway;

    @BeforeEach
    void startGateway() {
        gateway = FreshGateway.start();
    }

    @AfterEach
    void stopGateway() {
        gateway.close();
    }


    private long keyRows() {
        return gateway.bean(JdbcClient.class).sql("SELECT COUNT(*) FROM api_key").query(Long.class).single();
    }

    private void assertUnknownMember(Response response, String member) throws Exception {
        assertThat(response.code()).isEqualTo(400);
        assertThat(response.header("Content-Type")).isEqualTo("application/problem+json");
        JsonNode problem = mapper.readTree(response.body().string());
        assertThat(problem.path("status").asInt()).isEqualTo(400);
        assertThat(problem.path("title").asText()).isEqualTo("Bad request");
        assertThat(problem.path("detail").asText()).isEqualTo("Unknown member '" + member + "'; known: " + KNOWN + ".");
    }

    @Test
    void creatingAKeyWithAnUnknownMemberIs400AndCreatesNothing() throws Exception {
        assertThat(keyRows()).isZero();
        try (Response response = gateway.admin("POST", "/admin/keys", "{\"name\":\"typo\",\"tokensPerMinte\":5000}")) {
            assertUnknownMember(response, "tokensPerMinte");
        }
        assertThat(keyRows()).isZero();
        try (Response response = gateway.admin("POST", "/admin/keys", "{\"name\":\"ok\",\"tokensPerMinute\":5000}")) {
            assertThat(response.code()).isEqualTo(201);
            assertThat(mapper.readTree(response.body().string()).path("tokensPerMinute").asInt()).isEqualTo(5000);
        }
        assertThat(keyRows()).isEqualTo(1);
    }

    @Test
    void changingAKeyWithAnUnknownMemberIs400AndChangesNothing() throws Exception {
        long id = gateway.bean(ApiKeyService.class).create(new KeyChanges("kept", 7, 5000, 3, null)).key().id();
        try (Response response = gateway.admin("PATCH", "/admin/keys/" + id, "{\"requestsPerMinute\":9,\"maxStreams\":1}")) {
            assertUnknownMember(response, "maxStreams");
        }
        try (Response response = gateway.admin("GET", "/admin/keys/" + id, null)) {
            JsonNode key = mapper.readTree(response.body().string());
            assertThat(key.path("requestsPerMinute").asInt()).isEqualTo(7);
            assertThat(key.path("maxConcurrentStreams").asInt()).isEqualTo(3);
        }
        try (Response response = gateway.admin("PATCH", "/admin/keys/" + id, "{\"requestsPerMinute\":9}")) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(mapper.readTree(response.body().string()).path("requestsPerMinute").asInt()).isEqualTo(9);
        }
    }
}
