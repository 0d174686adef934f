package dev.llmrelay.gateway.keys;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * Admin PATCHes of one key that race each other (two operators, or a script in parallel): each
 * changes its own field, and none may undo another's change. Runs on H2 and on PostgreSQL.
 */
class KeyUpdateRaceTest extends GatewayTestSupport {

    private static final String[] CHANGES = {
        "{\"name\":\"renamed\"}",
        "{\"requestsPerMinute\":7}",
        "{\"tokensPerMinute\":777}",
        "{\"maxConcurrentStreams\":3}",
        "{\"enabled\":false}"};

    private final ExecutorService threads = Executors.newFixedThreadPool(CHANGES.length);

    @AfterEach
    void stopThreads() {
        threads.shutdownNow();
    }

    @Test
    void concurrentPatchesOfDifferentFieldsAllLand() throws Exception {
        for (int round = 0; round < 40; round++) {
            ApiKey key = keys.create(new ApiKeyService.KeyChanges("racer", 100, 1000, 10, true)).key();
            CountDownLatch go = new CountDownLatch(1);
            List<Future<Integer>> statuses = new ArrayList<>();
            for (String change : CHANGES) {
                statuses.add(threads.submit(() -> {
                    go.await();
                    try (Response response = client.newCall(new Request.Builder().url(url("/admin/keys/" + key.id()))
                            .patch(RequestBody.create(change, JSON))
                            .header("Authorization", "Bearer test-admin-token").build()).execute()) {
                        return response.code();
                    }
                }));
            }
            go.countDown();
            for (Future<Integer> status : statuses) {
                assertThat(status.get(30, TimeUnit.SECONDS)).isEqualTo(200);
            }
            ApiKey stored = keys.find(key.id()).orElseThrow();
            assertThat(stored).as("round " + round).extracting(ApiKey::name, ApiKey::requestsPerMinute,
                    ApiKey::tokensPerMinute, ApiKey::maxConcurrentStreams, ApiKey::enabled)
                    .containsExactly("renamed", 7, 777, 3, false);
        }
    }
}
