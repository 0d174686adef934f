package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

import jakarta.servlet.http.HttpServletRequest;

import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;

import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.headers.Header;
import io.swagger.v3.oas.annotations.media.Content;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.keys.ApiKeyService;
import dev.llmrelay.gateway.keys.BearerToken;
import dev.llmrelay.gateway.system.ApiSchemas;
import dev.llmrelay.gateway.system.ClientConnections;
import dev.llmrelay.gateway.system.GatewayErrorAdvice;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.system.RequestIdFilter;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecorder;

/**
 * OpenAI-compatible surface: chat completions and legacy text completions ({@link GenerationEndpoint}), one
 * path for both. Streams are relayed event by event ({@link SseRelay}); a non-streamed
 * completion is assembled from the upstream's stream ({@link ChatCompletionAggregator}); the model list is
 * proxied. Every answer is a {@link ResponseBodyEmitter} so one method can return either.
 */
@Tag(name = "OpenAI-compatible API")
@SecurityRequirement(name = "apiKey")
@RestController
@RequestMapping("/v1")
class ChatCompletionsController {

    private static final MediaType EVENT_STREAM = MediaType.TEXT_EVENT_STREAM;

    private final ApiKeyService keys;
    private final ChatStreamService streams;
    private final ClientConnections connections;
    private final ModelsProxy models;
    private final UsageRecorder usage;
    private final SseHeartbeats heartbeats;
    private final ObjectMapper mapper;
    private final GatewayProperties properties;

    ChatCompletionsController(ApiKeyService keys, ChatStreamService streams, ClientConnections connections,
            ModelsProxy models, UsageRecorder usage, SseHeartbeats heartbeats, ObjectMapper mapper,
            GatewayProperties properties) {
        this.keys = keys;
        this.streams = streams;
        this.connections = connections;
        this.models = models;
        this.usage = usage;
        this.heartbeats = heartbeats;
        this.mapper = mapper;
        this.properties = properties;
    }

    @Operation(summary = "OpenAI chat completion, streamed (text/event-stream) or not",
            description = "Body: OpenAI chat request. Bearer API key. 429 carries Retry-After and X-RateLimit-*; "
                    + "503 + Retry-After when no upstream can serve (a stream client gets one error event, then "
                    + "data: [DONE]); upstream 4xx pass through unchanged.")
    @io.swagger.v3.oas.annotations.parameters.RequestBody(required = true, content = @Content(
            mediaType = "application/json", schema = @Schema(implementation = ApiSchemas.ChatCompletionRequest.class)))
    @ApiResponse(responseCode = "200", description = "A chat.completion (JSON) or, with stream: true, its "
            + "chat.completion.chunk events (text/event-stream: data: <chunk> ... data: [DONE])", content = {
            @Content(mediaType = "application/json",
                    schema = @Schema(implementation = ApiSchemas.ChatCompletion.class)),
            @Content(mediaType = "text/event-stream",
                    schema = @Schema(implementation = ApiSchemas.ServerSentEvent.class))})
    @ApiResponse(responseCode = "429", description = "A limit of the key is spent",
            headers = @Header(name = "Retry-After", schema = @Schema(type = "integer")),
            content = @Content(mediaType = "application/json",
                    schema = @Schema(implementation = ApiSchemas.OpenAiError.class)))
    @ApiResponse(responseCode = "503", description = "No upstream can serve now; a stream client gets one error "
            + "event, then data: [DONE]", headers = @Header(name = "Retry-After", schema = @Schema(type = "integer")),
            content = {
            @Content(mediaType = "application/json",
                    schema = @Schema(implementation = ApiSchemas.OpenAiError.class)),
            @Content(mediaType = "text/event-stream",
                    schema = @Schema(implementation = ApiSchemas.ServerSentEvent.class))})
    @PostMapping("/chat/completions")
    DeferredResult<ResponseEntity<ResponseBodyEmitter>> chatCompletions(@RequestBody(required = false) byte[] body,
            HttpServletRequest http) {
        return generate(GenerationEndpoint.CHAT, body, http);
    }

    @Operation(summary = "OpenAI legacy text completion (prompt in, choices[].text out), streamed or not",
            description = "Body: OpenAI completions request with one prompt (a string or token ids). The same keys, "
                    + "limits (429 with Retry-After and X-RateLimit-*), failover (503 + Retry-After when no upstream "
                    + "can serve) and usage accounting as chat completions; the prompt reaches the model without a "
                    + "chat template.")
    @io.swagger.v3.oas.annotations.parameters.RequestBody(required = true, content = @Content(
            mediaType = "application/json", schema = @Schema(implementation = ApiSchemas.CompletionRequest.class)))
    @ApiResponse(responseCode = "200", description = "A text_completion (JSON) or, with stream: true, its "
            + "text_completion chunks (text/event-stream: data: <chunk> ... data: [DONE])", content = {
            @Content(mediaType = "application/json",
                    schema = @Schema(implementation = ApiSchemas.TextCompletion.class)),
            @Content(mediaType = "text/event-stream",
                    schema = @Schema(implementation = ApiSchemas.ServerSentEvent.class))})
    @PostMapping("/completions")
    DeferredResult<ResponseEntity<ResponseBodyEmitter>> completions(@RequestBody(required = false) byte[] body,
            HttpServletRequest http) {
        return generate(GenerationEndpoint.COMPLETIONS, body, http);
    }

    /**
     * Answers asynchronously: no request thread waits for an upstream (before, each stream held one until its
     * first event, and each JSON answer until its last, so 400 Tomcat threads bounded the streams starting
     * at once and every thread was one more for two cores to schedule).
     */
    private DeferredResult<ResponseEntity<ResponseBodyEmitter>> generate(GenerationEndpoint endpoint, byte[] body,
            HttpServletRequest http) {
        String requestId = RequestIdFilter.of(http);
        ApiKey key = authenticate(http, requestId, endpoint.usageName);
        ObjectNode request = parse(body, key, requestId, endpoint);
        return ChatRequests.wantsStream(request) ? stream(endpoint, key, request, requestId)
                : complete(endpoint, key, request, requestId, http);
    }

    private DeferredResult<ResponseEntity<ResponseBodyEmitter>> stream(GenerationEndpoint endpoint, ApiKey key,
            ObjectNode request, String requestId) {
        SseRelay relay = new SseRelay(properties.timeouts().stream(), heartbeats, mapper);
        ChatStreamHandle handle = streams.start(endpoint, key, request, requestId, relay);
        relay.attach(handle);
        // headers (status, rate limits) can only be chosen once we know whether an upstream took it
        DeferredResult<ResponseEntity<ResponseBodyEmitter>> answer = new DeferredResult<>(startBudget().toMillis());
        answer.onTimeout(() -> {
            handle.cancel();
            answer.setResult(streamStart(handle, relay, new ChatStreamError(504, "server_error", "upstream_timeout",
                    "No upstream answered in time", null, 0, false)));
        });
        answer.onError(e -> handle.cancel());
        relay.started().thenAccept(early -> answer.setResult(streamStart(handle, relay, early)));
        return answer;
    }

    /** The stream's answer once it started (null) or failed before its first event. */
    private ResponseEntity<ResponseBodyEmitter> streamStart(ChatStreamHandle handle, SseRelay relay,
            ChatStreamError early) {
        if (early == null) {
            HttpHeaders headers = new HttpHeaders();
            handle.rateLimitHeaders().forEach(headers::set);
            return ResponseEntity.ok().headers(headers).contentType(EVENT_STREAM).body(relay.emitter());
        }
        Map<String, String> headers = errorHeaders(handle, early);
        if (early.upstreamBody() != null && early.status() < 500) {
            // an upstream 4xx passes through unchanged
            return fixed(early.status(), headers, MediaType.APPLICATION_JSON,
                    early.upstreamBody().getBytes(StandardCharsets.UTF_8));
        }
        // a stream client gets one error event, then the end
        String events = "data: " + relay.errorEvent(early) + "\n\ndata: [DONE]\n\n";
        return fixed(early.status(), headers, EVENT_STREAM, events.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * A client that wants one JSON answer: the upstream still streams (see {@link ChatCompletionAggregator}),
     * and a client that closes its connection meanwhile cancels the generation within a probe interval.
     */
    private DeferredResult<ResponseEntity<ResponseBodyEmitter>> complete(GenerationEndpoint endpoint, ApiKey key,
            ObjectNode request, String requestId, HttpServletRequest http) {
        ChatCompletionAggregator aggregator = new ChatCompletionAggregator(mapper, endpoint);
        ChatStreamHandle handle = streams.start(endpoint, key, request, requestId, aggregator);
        ClientConnections.Watch watch = connections.watch(http, () -> {
            handle.cancel();
            aggregator.clientGone();
        });
        Duration limit = properties.timeouts().stream();
        DeferredResult<ResponseEntity<ResponseBodyEmitter>> answer = new DeferredResult<>(limit.toMillis());
        answer.onTimeout(() -> {
            watch.close();
            handle.cancel();
            answer.setResult(completion(handle, new ChatCompletionAggregator.Outcome(null, new ChatStreamError(504,
                    "server_error", "upstream_timeout", "No complete answer within " + limit.toSeconds()
                            + " s (gateway.timeouts.stream)", null, 0, true))));
        });
        answer.onError(e -> {
            watch.close();
            handle.cancel();
        });
        aggregator.outcome().thenAccept(outcome -> {
            watch.close(); // before the answer is written: no probe touches the connection afterwards
            answer.setResult(completion(handle, outcome));
        });
        return answer;
    }

    private ResponseEntity<ResponseBodyEmitter> completion(ChatStreamHandle handle,
            ChatCompletionAggregator.Outcome outcome) {
        if (outcome.completion() != null) {
            return fixed(200, handle.rateLimitHeaders(), MediaType.APPLICATION_JSON, json(outcome.completion()));
        }
        ChatStreamError error = outcome.error();
        if (error == null) {
            // the client left: nobody reads this, the usage row already says client_cancelled
            return ResponseEntity.status(499).build();
        }
        byte[] body = error.upstreamBody() != null && error.status() < 500
                ? error.upstreamBody().getBytes(StandardCharsets.UTF_8) // an upstream 4xx passes through unchanged
                : json(GatewayErrorAdvice.openAiBody(error.message(), error.type(), null, error.code()));
        return fixed(error.status(), errorHeaders(handle, error), MediaType.APPLICATION_JSON, body);
    }

    private byte[] json(Object value) {
        try {
            return mapper.writeValueAsBytes(value);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, String> errorHeaders(ChatStreamHandle handle, ChatStreamError error) {
        Map<String, String> headers = new LinkedHashMap<>(handle.rateLimitHeaders());
        if (error.retryAfterSeconds() > 0) {
            headers.put("Retry-After", Long.toString(error.retryAfterSeconds()));
        }
        return headers;
    }

    @Operation(summary = "Models served by the upstreams (OpenAI list shape)")
    @ApiResponse(responseCode = "200", description = "OK", content = @Content(mediaType = "application/json",
            schema = @Schema(implementation = ApiSchemas.ModelList.class)))
    @GetMapping("/models")
    ResponseEntity<ResponseBodyEmitter> listModels(HttpServletRequest http) throws IOException {
        String requestId = RequestIdFilter.of(http);
        authenticate(http, requestId, "models");
        ModelsProxy.Answer answer = models.list(requestId);
        return fixed(answer.status(), answer.headers(), MediaType.parseMediaType(answer.contentType()),
                answer.body());
    }

    private Duration startBudget() {
        int upstreams = properties.upstreams().size();
        return properties.timeouts().connect().multipliedBy(upstreams + 1L).plus(properties.timeouts().read());
    }

    private ApiKey authenticate(HttpServletRequest http, String requestId, String usageEndpoint) {
        String token = BearerToken.from(http);
        Optional<ApiKey> key = keys.authenticate(token);
        if (key.isEmpty()) {
            usage.recordRefused(requestId, null, usageEndpoint, null, false, EndReason.unauthorized, 401);
            throw OpenAiException.unauthorized(token == null
                    ? "Missing API key: send Authorization: Bearer <key>"
                    : "Invalid API key");
        }
        return key.get();
    }

    private ObjectNode parse(byte[] body, ApiKey key, String requestId, GenerationEndpoint endpoint) {
        JsonNode parsed;
        try {
            parsed = body == null || body.length == 0 ? null : mapper.readTree(body);
        } catch (IOException e) {
            parsed = null;
        }
        if (!(parsed instanceof ObjectNode object)) {
            usage.recordRefused(requestId, key.id(), endpoint.usageName, null, false, EndReason.bad_request, 400);
            throw OpenAiException.badRequest(null, "The request body must be a JSON object");
        }
        return object;
    }

    /** A whole answer in an emitter (its send is buffered until MVC takes the emitter: no I/O here). */
    private static ResponseEntity<ResponseBodyEmitter> fixed(int status, Map<String, String> headers,
            MediaType type, byte[] body) {
        ResponseBodyEmitter emitter = new ResponseBodyEmitter();
        try {
            emitter.send(body, type);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        emitter.complete();
        HttpHeaders httpHeaders = new HttpHeaders();
        headers.forEach(httpHeaders::set);
        return ResponseEntity.status(status).headers(httpHeaders).contentType(type).body(emitter);
    }
}
