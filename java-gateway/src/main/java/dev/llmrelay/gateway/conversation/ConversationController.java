package dev.llmrelay.gateway.conversation;

import dev.llmrelay.gateway.system.ApiProblem;

import java.time.Instant;
import java.util.List;

import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.swagger.v3.oas.annotations.security.SecurityRequirement;
import io.swagger.v3.oas.annotations.tags.Tag;

/** The signed-in key's conversations: list, read with all messages, delete. */
@Tag(name = "Browser API")
@SecurityRequirement(name = BrowserWebConfig.SECURITY)
@RestController
@RequestMapping("/api/chat/conversations")
class ConversationController {

    private static final int LIST_LIMIT = 200;

    private final ConversationRepository repository;
    private final BrowserChatService chat;

    ConversationController(ConversationRepository repository, BrowserChatService chat) {
        this.repository = repository;
        this.chat = chat;
    }

    /** {@code model}: the model the conversation's replies come from, null when none was chosen (the default). */
    record Summary(String id, String title, @Schema(types = {"string", "null"}) String model, Instant createdAt,
            Instant updatedAt) {
    }

    record ConversationList(List<Summary> conversations) {
    }

    /** {@code followable}: for a reply still streaming, whether this session may open its stream. */
    record MessageView(String id, String role, String content, String status,
            @Schema(types = {"string", "null"}) String finishReason,
            @Schema(types = {"string", "null"}) String error,
            @Schema(types = {"integer", "null"}, format = "int32") Integer promptTokens,
            @Schema(types = {"integer", "null"}, format = "int32") Integer completionTokens,
            Instant createdAt,
            @Schema(types = {"boolean", "null"}, description = "null unless the reply is streaming")
            Boolean followable) {
    }

    @Schema(name = "Conversation")
    record Detail(String id, String title, @Schema(types = {"string", "null"}) String model, Instant createdAt,
            Instant updatedAt, List<MessageView> messages) {
    }

    @GetMapping
    ConversationList list(BrowserSession session) {
        return new ConversationList(repository.listConversations(session.key().id(), LIST_LIMIT).stream()
                .map(c -> new Summary(c.id(), c.title(), c.model(), c.createdAt(), c.updatedAt()))
                .toList());
    }

    @GetMapping("/{id}")
    Detail get(@PathVariable String id, BrowserSession session) {
        Conversation c = repository.findConversation(id, session.key().id())
                .orElseThrow(() -> ApiProblem.notFound("No conversation " + id + "."));
        List<MessageView> messages = repository.messages(c.id()).stream()
                .map(m -> ChatMessage.STREAMING.equals(m.status())
                        ? m.withContent(chat.liveText(m.id()).orElse(m.content())) : m)
                .map(m -> new MessageView(m.id(), m.role(), m.content(), m.status(), m.finishReason(),
                        m.errorMessage(), m.promptTokens(), m.completionTokens(), m.createdAt(),
                        ChatMessage.STREAMING.equals(m.status()) ? session.tokenHash().equals(m.sessionHash()) : null))
                .toList();
        return new Detail(c.id(), c.title(), c.model(), c.createdAt(), c.updatedAt(), messages);
    }

    @ApiResponse(responseCode = "204", description = "Deleted, with its messages")
    @DeleteMapping("/{id}")
    ResponseEntity<Void> delete(@PathVariable String id, BrowserSession session) {
        repository.findConversation(id, session.key().id())
                .orElseThrow(() -> ApiProblem.notFound("No conversation " + id + "."));
        // A reply still running in it is stopped first, so the model does not work for nothing.
        repository.messages(id).stream()
                .filter(m -> ChatMessage.STREAMING.equals(m.status()) && session.tokenHash().equals(m.sessionHash()))
                .forEach(m -> chat.cancel(session, m.id()));
        repository.deleteConversation(id, session.key().id());
        return ResponseEntity.noContent().build();
    }
}
