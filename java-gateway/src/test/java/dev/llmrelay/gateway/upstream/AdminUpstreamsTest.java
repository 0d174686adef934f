package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.FreshGateway;
import okhttp3.Response;

/** GET /admin/upstreams: each replica, its pool, health, breaker, calls in flight and scraped load. */
class AdminUpstreamsTest {

    @Test
    void everyReplicaIsListedWithItsPoolAndState() throws Exception {
        try (FreshGateway gateway = FreshGateway.startPools(Arrays.asList(null, "qwen"))) {
            gateway.bean(UpstreamPool.class).upstreams().get(1).breaker().transitionToOpenState();
            JsonNode list;
            try (Response response = gateway.admin("GET", "/admin/upstreams", null)) {
                assertThat(response.code()).isEqualTo(200);
                list = new ObjectMapper().readTree(response.body().string()).path("upstreams");
            }
            assertThat(list).hasSize(2);
            assertThat(list.get(0).path("name").asText()).isEqualTo(gateway.upstream(0).baseUrl());
            assertThat(list.get(0).path("model").isNull()).isTrue();
            assertThat(list.get(0).path("breaker").asText()).isEqualTo("CLOSED");
            assertThat(list.get(0).path("inFlight").asInt()).isZero();
            assertThat(list.get(0).path("waiting").isNull()).isTrue(); // never scraped
            assertThat(list.get(1).path("model").asText()).isEqualTo("qwen");
            assertThat(list.get(1).path("breaker").asText()).isEqualTo("OPEN");
            java.net.http.HttpResponse<String> refused = java.net.http.HttpClient.newHttpClient().send(
                    java.net.http.HttpRequest.newBuilder(java.net.URI.create(gateway.url("/admin/upstreams")))
                            .header("Authorization", "Bearer not-the-admin-token").build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(refused.statusCode()).isEqualTo(401);
        }
    }
}
