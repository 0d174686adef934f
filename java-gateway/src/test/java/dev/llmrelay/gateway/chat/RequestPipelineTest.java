package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyBoolean;
import static org.mockito.ArgumentMatchers.anyInt;
import static org.mockito.ArgumentMatchers.anyLong;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.verify;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.RateLimitPermit;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecorder;

/** The pipeline's contract: stages in order, and a refusal that gives back what was taken and writes one row. */
class RequestPipelineTest {

    private static final ApiKey KEY = new ApiKey(7, "k", "sk-relay-x", 10, 1000, 2, true, Instant.now(), null);

    private final UsageRecorder usage = mock(UsageRecorder.class);
    private final List<String> ran = new ArrayList<>();

    private ObjectNode body() throws Exception {
        return (ObjectNode) new ObjectMapper().readTree(
                "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    }

    private RequestStage stage(String name, EndReason reason, java.util.function.Consumer<GenerationRequest> job) {
        return new RequestStage() {
            @Override
            public void apply(GenerationRequest request) {
                ran.add(name);
                job.accept(request);
            }

            @Override
            public EndReason refusal() {
                return reason;
            }
        };
    }

    /** A permit that counts what was given back. */
    private static final class CountingPermit implements RateLimitPermit {
        final AtomicInteger settledToZero = new AtomicInteger();
        final AtomicInteger released = new AtomicInteger();

        @Override
        public Map<String, String> headers() {
            return Map.of();
        }

        @Override
        public void settle(long actualTokens) {
            if (actualTokens == 0) {
                settledToZero.incrementAndGet();
            }
        }

        @Override
        public void release() {
            released.incrementAndGet();
        }
    }

    @Test
    void stagesRunInOrderAndEachSeesWhatTheOnesBeforeDecided() throws Exception {
        RequestPipeline pipeline = new RequestPipeline(List.of(
                stage("route", EndReason.bad_request, r -> r.model = "served"),
                stage("policy", EndReason.degraded, r -> assertThat(r.model).isEqualTo("served"))), usage);

        GenerationRequest admitted = pipeline.admit(GenerationEndpoint.CHAT, KEY, body(), "req-1", "conv");

        assertThat(ran).containsExactly("route", "policy");
        assertThat(admitted.model).isEqualTo("served");
        assertThat(admitted.requestedModel).isEqualTo("m");
        assertThat(admitted.clientStreams).isTrue();
        assertThat(admitted.affinityKey).isEqualTo("conv");
        verify(usage, never()).recordRefused(any(), any(), any(), any(), anyBoolean(), any(), anyInt());
    }

    @Test
    void aRefusalGivesBackThePermitOnceStopsTheChainAndWritesOneRowWithItsStagesReason() throws Exception {
        CountingPermit permit = new CountingPermit();
        RequestPipeline pipeline = new RequestPipeline(List.of(
                stage("route", EndReason.bad_request, r -> r.model = "served"),
                stage("limits", EndReason.rate_limited, r -> r.permit = permit),
                stage("shed", EndReason.degraded, r -> {
                    throw new OpenAiException(503, "server_error", "overloaded", null, "shed", Map.of());
                }),
                stage("never", EndReason.bad_request, r -> {
                })), usage);

        assertThatThrownBy(() -> pipeline.admit(GenerationEndpoint.CHAT, KEY, body(), "req-2", null))
                .isInstanceOfSatisfying(OpenAiException.class, e -> assertThat(e.code()).isEqualTo("overloaded"));

        assertThat(ran).containsExactly("route", "limits", "shed");
        assertThat(permit.settledToZero.get()).isEqualTo(1);
        assertThat(permit.released.get()).isEqualTo(1);
        verify(usage).recordRefused("req-2", 7L, "chat.completions", "served", true, EndReason.degraded, 503);
    }

    @Test
    void aRefusalBeforeTheRouteNamesTheRequestedModel() throws Exception {
        RequestPipeline pipeline = new RequestPipeline(List.of(stage("validate", EndReason.bad_request, r -> {
            throw OpenAiException.badRequest("n", "'n' must be a positive integer");
        })), usage);

        assertThatThrownBy(() -> pipeline.admit(GenerationEndpoint.COMPLETIONS, KEY, body(), "req-3", null))
                .isInstanceOf(OpenAiException.class);

        verify(usage).recordRefused("req-3", 7L, "completions", "m", true, EndReason.bad_request, 400);
    }

    @Test
    void aStageThatBreaksGivesBackWhatWasTakenAndWritesNoRefusal() throws Exception {
        CountingPermit permit = new CountingPermit();
        RequestPipeline pipeline = new RequestPipeline(List.of(
                stage("limits", EndReason.rate_limited, r -> r.permit = permit),
                stage("body", EndReason.bad_request, r -> {
                    throw new IllegalStateException("cannot serialise");
                })), usage);

        assertThatThrownBy(() -> pipeline.admit(GenerationEndpoint.CHAT, KEY, body(), "req-4", null))
                .isInstanceOf(IllegalStateException.class);

        assertThat(permit.released.get()).isEqualTo(1);
        verify(usage, never()).recordRefused(anyString(), anyLong(), anyString(), anyString(), anyBoolean(), any(),
                anyInt());
    }
}
