package dev.llmrelay.gateway.chat;

import org.springframework.stereotype.Service;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.RateLimitExceededException;
import dev.llmrelay.gateway.safety.ContentFilter;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import okhttp3.OkHttpClient;
import okhttp3.sse.EventSources;

/**
 * One streamed chat completion (or legacy text completion, {@link GenerationEndpoint}) through the gateway,
 * for any front end (the /v1 relay, the browser API): the {@link RequestPipeline} lets it in, an
 * {@link UpstreamStream} tries upstreams and relays the answer through its {@link StreamOutput}, and
 * {@link StreamAccounting} books its end.
 *
 * <pre>{@code
 * ChatStreamHandle handle = chatStreams.start(key, request, requestId, new ChatStreamListener() {
 *     public void onDelta(String text) { ... }
 *     public void onFinish(String finishReason, ChatUsage usage) { ... }
 *     public void onError(ChatStreamError error) { ... }
 * });
 * // later, when the reader goes away:
 * handle.cancel();
 * }</pre>
 *
 * {@code start} returns at once; callbacks follow on an OkHttp thread. It throws
 * {@link RateLimitExceededException} (429, with headers) when a limit of the key is spent and
 * {@link dev.llmrelay.gateway.system.OpenAiException} for a request a stage refuses (400 malformed, over the
 * context length or filtered; 404 unknown model; 503 paused or shed). The upstream is always asked for
 * {@code stream_options.include_usage}; the usage chunk reaches the listener only if the request asked for
 * it. Every request writes one usage row.
 */
@Service
public class ChatStreamService {

    private final RequestPipeline pipeline;
    private final ContentFilter contentFilter;
    private final UpstreamStream.Parts parts;

    ChatStreamService(RequestPipeline pipeline, UpstreamPool pool, StreamAccounting accounting, ObjectMapper mapper,
            GatewayProperties properties, OkHttpClient upstreamHttpClient, ContentFilter contentFilter,
            UpstreamRequestStage upstreamRequests, Degradation degradation) {
        this.pipeline = pipeline;
        this.contentFilter = contentFilter;
        this.parts = new UpstreamStream.Parts(pool, properties.timeouts().read(),
                EventSources.createFactory(upstreamHttpClient), degradation, upstreamRequests, accounting, mapper);
    }

    /**
     * Starts streaming {@code openAiRequest} (an OpenAI chat request; {@code stream} is forced on) for
     * {@code key}. {@code requestId} travels to the model-service as X-Request-Id and into the usage row.
     */
    public ChatStreamHandle start(ApiKey key, ObjectNode openAiRequest, String requestId,
            ChatStreamListener listener) {
        return start(GenerationEndpoint.CHAT, key, openAiRequest, requestId, listener);
    }

    /** As above, for any generation endpoint (a text completion's chunks carry {@code choices[].text}). */
    ChatStreamHandle start(GenerationEndpoint endpoint, ApiKey key, ObjectNode openAiRequest, String requestId,
            ChatStreamListener listener) {
        // OpenAI's `user` names the end user: their requests prefer one replica (its prompt cache)
        String user = openAiRequest.path("user").isTextual() ? openAiRequest.path("user").asText() : "";
        return start(endpoint, key, openAiRequest, requestId,
                user.isEmpty() ? null : "user:" + key.id() + ":" + user, listener);
    }

    /**
     * As above, with the replica preference given by the caller ({@code affinityKey}, e.g. a conversation;
     * null: none), see {@link UpstreamPool#acquire(java.util.Set, String)}.
     */
    public ChatStreamHandle start(ApiKey key, ObjectNode openAiRequest, String requestId, String affinityKey,
            ChatStreamListener listener) {
        return start(GenerationEndpoint.CHAT, key, openAiRequest, requestId, affinityKey, listener);
    }

    private ChatStreamHandle start(GenerationEndpoint endpoint, ApiKey key, ObjectNode openAiRequest,
            String requestId, String affinityKey, ChatStreamListener listener) {
        GenerationRequest request = pipeline.admit(endpoint, key, openAiRequest, requestId, affinityKey);
        StreamOutput output = new StreamOutput(request, contentFilter.forStream(key.id(), requestId),
                request.route.model());
        UpstreamStream stream = new UpstreamStream(parts, request, output, listener);
        stream.connect();
        return stream;
    }
}
