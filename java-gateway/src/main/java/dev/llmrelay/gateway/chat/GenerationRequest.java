package dev.llmrelay.gateway.chat;

import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.BudgetReservation;
import dev.llmrelay.gateway.ratelimit.RateLimitPermit;

/**
 * One generation request as it passes the {@link RequestPipeline}: what the client sent, and what each
 * stage decided (the served model, the prompt estimate and reservation, the key's permit, the route and
 * its slot, the body the upstream gets). Written by one thread, the one that runs the pipeline.
 */
final class GenerationRequest {

    final GenerationEndpoint endpoint;
    final ApiKey key;
    /** The client's request: stages may lower its budget (the cap); the upstream gets {@link #upstreamBody}. */
    final ObjectNode body;
    final String requestId;
    /** For the usage row: whether the client asked for a stream (the upstream is always asked for one). */
    final boolean clientStreams;
    final boolean clientWantsUsage;
    /** The replica preference (a conversation, an end user), or null. */
    final String affinityKey;
    /** Its spans (admission, upstream attempts) under the gateway request's. */
    final RequestTrace trace;
    /** When the gateway took the request (before any stage): the start of the TTFT the gateway adds. */
    final long arrivedNanos = System.nanoTime();
    /** The request's {@code n} ({@link ValidateStage}). */
    int choices = 1;

    /** The model the request names, or null. */
    String requestedModel;
    /** The model that serves it ({@link RouteStage}); every policy after the route keys on it. */
    String model;
    int promptEstimate;
    /** Tokens reserved against the key: the prompt plus what each choice may produce. */
    long reservation;
    /** What the request holds of its key's token budget ({@link BudgetStage}). */
    BudgetReservation budget = BudgetReservation.NONE;
    RateLimitPermit permit;
    Degradation.Route route;
    byte[] upstreamBody;

    /** An untraced request (a unit test's). */
    GenerationRequest(GenerationEndpoint endpoint, ApiKey key, ObjectNode body, String requestId,
            String affinityKey) {
        this(endpoint, key, body, requestId, affinityKey, RequestTrace.off());
    }

    GenerationRequest(GenerationEndpoint endpoint, ApiKey key, ObjectNode body, String requestId,
            String affinityKey, RequestTrace trace) {
        this.trace = trace;
        this.endpoint = endpoint;
        this.key = key;
        this.body = body;
        this.requestId = requestId;
        this.affinityKey = affinityKey;
        this.clientStreams = ChatRequests.wantsStream(body);
        this.clientWantsUsage = body.path("stream_options").path("include_usage").asBoolean(false);
        this.requestedModel = ChatRequests.model(body);
    }

    /** What a refusal gives back: the key's budget hold, reservation and stream, the pool's slot. */
    void releaseAdmission() {
        budget.settle(0);
        if (permit != null) {
            permit.settle(0);
            permit.release();
        }
        if (route != null) {
            route.slot().release();
        }
    }
}
