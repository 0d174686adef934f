package dev.llmrelay.gateway.conversation;

import java.time.Instant;
import java.util.List;
import java.util.Map;

import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/** The signed-in key's conversations: list, read with all messages, delete. */
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

    record Summary(String id, String title, Instant createdAt, Instant updatedAt) {
    }

    /** {@code followable}: for a reply still streaming, whether this session may open its stream. */
    record MessageView(String id, String role, String content, String status, String finishReason, String error,
            Integer promptTokens, Integer completionTokens, Instant createdAt, Boolean followable) {
    }

    record Detail(String id, String title, Instant createdAt, Instant updatedAt, List<MessageView> messages) {
    }

    @GetMapping
    Map<String, List<Summary>> list(BrowserSession session) {
        return Map.of("conversations", repository.listConversations(session.key().id(), LIST_LIMIT).stream()
                .map(c -> new Summary(c.id(), c.title(), c.createdAt(), c.updatedAt()))
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
        return new Detail(c.id(), c.title(), c.createdAt(), c.updatedAt(), messages);
    }

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
