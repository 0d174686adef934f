package dev.llmrelay.gateway.conversation;

import jakarta.servlet.http.HttpServletRequest;

import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;

import io.swagger.v3.oas.annotations.media.Content;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.system.ApiSchemas;
import dev.llmrelay.gateway.system.RequestIdFilter;

/**
 * Send a message, follow its reply as an event stream (native EventSource: GET, cookie, resume
 * with Last-Event-ID), stop the reply.
 */
@Tag(name = "Browser API")
@SecurityRequirement(name = BrowserWebConfig.SECURITY)
@RestController
@RequestMapping("/api/chat/messages")
class ChatMessageController {

    private final BrowserChatService chat;

    ChatMessageController(BrowserChatService chat) {
        this.chat = chat;
    }

    record NewMessage(
            @Schema(description = "absent: a new conversation") String conversationId,
            @Schema(requiredMode = Schema.RequiredMode.REQUIRED, pattern = "\\S",
                    description = "at most gateway.browser.max-content-chars (32000 by default)") String content,
            @Schema(description = "one of GET /api/chat/models; absent: the conversation's own (a new one's: the "
                    + "default). Naming another switches the conversation to it.") String model) {
    }

    @PostMapping(consumes = MediaType.APPLICATION_JSON_VALUE)
    BrowserChatService.Sent send(@RequestBody NewMessage body, BrowserSession session, HttpServletRequest request,
            jakarta.servlet.http.HttpServletResponse response) {
        if (body == null) {
            throw ApiProblem.badRequest("A JSON body {\"content\"} is required.");
        }
        BrowserChatService.Sent sent = chat.send(session, body.conversationId(), body.content(),
                body.model(), RequestIdFilter.of(request));
        if (sent.fallback() != null) {
            response.setHeader(dev.llmrelay.gateway.degrade.Degradation.FALLBACK_HEADER, sent.fallback());
        }
        return sent;
    }

    @ApiResponse(responseCode = "200", description = "The reply's events (token, finish, error) with ids 1, 2, 3...",
            content = @Content(mediaType = MediaType.TEXT_EVENT_STREAM_VALUE,
                    schema = @Schema(implementation = ApiSchemas.ServerSentEvent.class)))
    @ApiResponse(responseCode = "204", description = "Nothing left to send: the stored message has it all",
            content = @Content(schema = @Schema(hidden = true)))
    @GetMapping(path = "/{messageId}/stream", produces = {MediaType.TEXT_EVENT_STREAM_VALUE, MediaType.ALL_VALUE})
    ResponseEntity<ResponseBodyEmitter> stream(@PathVariable String messageId,
            @RequestHeader(name = "Last-Event-ID", required = false) String lastEventId, BrowserSession session,
            HttpServletRequest request) {
        return chat.follow(session, messageId, lastEventId, request)
                .map(emitter -> ResponseEntity.ok()
                        .contentType(MediaType.TEXT_EVENT_STREAM)
                        .header(HttpHeaders.CACHE_CONTROL, "no-cache")
                        .header("X-Accel-Buffering", "no")
                        .body(emitter))
                // 204 tells EventSource the stream is over for good: it stops reconnecting.
                .orElseGet(() -> ResponseEntity.noContent().build());
    }

    @ApiResponse(responseCode = "204", description = "Stopped (or had already ended)")
    @PostMapping("/{messageId}/cancel")
    ResponseEntity<Void> cancel(@PathVariable String messageId, BrowserSession session) {
        chat.cancel(session, messageId);
        return ResponseEntity.noContent().build();
    }
}
