package dev.llmrelay.gateway.conversation;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

import jakarta.servlet.http.HttpServletRequest;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.dao.DataIntegrityViolationException;
import org.springframework.transaction.support.TransactionTemplate;
import org.springframework.stereotype.Service;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.system.GatewayProperties;

/**
 * The browser chat flow: store the user's message, start the model on the conversation so far,
 * let the owning session follow (and resume) the reply's event stream, stop it on request,
 * and store how it ended.
 */
@Service
class BrowserChatService {

    private static final Logger log = LoggerFactory.getLogger(BrowserChatService.class);
    private static final int TITLE_CHARS = 60;

    private final ConversationRepository repository;
    private final TransactionTemplate transactions;
    private final ReplyRegistry replies;
    private final ReplySource source;
    private final Optional<RedisReplyStreams> shared;
    private final BrowserProperties properties;
    private final Duration streamTimeout;
    private final ObjectMapper json;
    private final Clock clock = Clock.systemUTC();
    private final Degradation degradation;
    private final ChatModels models;

    BrowserChatService(ConversationRepository repository, ReplyRegistry replies, ReplySource source,
            Optional<RedisReplyStreams> shared, BrowserProperties properties, GatewayProperties gateway,
            ObjectMapper json, TransactionTemplate transactions, Degradation degradation, ChatModels models) {
        this.degradation = degradation;
        this.models = models;
        this.shared = shared;
        this.repository = repository;
        this.transactions = transactions;
        this.replies = replies;
        this.source = source;
        this.properties = properties;
        this.streamTimeout = gateway.timeouts().stream();
        this.json = json;
    }

    /** {@code fallback}: {@code <primary>-><fallback>} when a fallback route serves the reply, else absent. */
    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    record Sent(String conversationId, String messageId, String fallback) {
    }

    /** Stores the user message and starts the reply; refusals (429, 503...) leave nothing stored. */
    Sent send(BrowserSession session, String conversationId, String content, String model, String requestId) {
        if (content == null || content.isBlank()) {
            throw ApiProblem.badRequest("content must not be empty.");
        }
        if (content.length() > properties.maxContentChars()) {
            throw ApiProblem.badRequest("content is longer than " + properties.maxContentChars() + " characters.");
        }
        String chosen = models.check(model); // before anything is stored
        Instant now = clock.instant();
        boolean created = conversationId == null || conversationId.isBlank();
        if (created) {
            degradation.checkNewConversation(); // the operator's switch: existing conversations go on
        }
        ReplyGeneration generation = new ReplyGeneration(UUID.randomUUID().toString(), json, this::storeEnding,
                shared.<ReplyGeneration.Feed>map(s -> s).orElse(ReplyGeneration.Feed.NONE));
        Stored stored;
        try {
            stored = transactions.execute(tx -> store(session, created ? null : conversationId, content, chosen,
                    now, generation));
        } catch (DataIntegrityViolationException sameSeq) {
            replies.remove(generation.messageId());
            throw ApiProblem.conflict("Another message was just sent in this conversation: wait for its reply.");
        } catch (RuntimeException refused) {
            replies.remove(generation.messageId());
            throw refused;
        }
        Conversation conversation = stored.conversation();
        List<ChatMessage> history = stored.history();
        ChatMessage user = stored.user();
        ChatMessage reply = stored.reply();
        repository.touchConversation(conversation.id(), now);

        ReplySource.ReplyHandle handle;
        try {
            handle = source.start(session.key(), request(conversation.model(), history, content), requestId,
                    conversation.id(), generation);
            generation.attach(handle);
        } catch (RuntimeException refused) {
            // Nothing was generated: take the messages back so the page can offer the text again.
            replies.remove(reply.id());
            repository.deleteMessage(reply.id());
            repository.deleteMessage(user.id());
            if (created) {
                repository.deleteConversation(conversation.id(), session.key().id());
            } else if (stored.switched()) {
                repository.setModel(conversation.id(), stored.modelBefore()); // refused: no switch either
            }
            throw refused;
        }
        return new Sent(conversation.id(), reply.id(), handle.fallback());
    }

    /** {@code modelBefore}: the conversation's model before this message switched it ({@code switched}). */
    private record Stored(Conversation conversation, List<ChatMessage> history, ChatMessage user, ChatMessage reply,
            boolean switched, String modelBefore) {
    }

    /**
     * Stores the user message and the streaming reply in one transaction that holds the
     * conversation's row lock, and registers the reply before committing: a send racing this one
     * waits for the lock, then sees the live reply and gets 409 (before, both could pass the check
     * and two replies streamed at once in one conversation).
     */
    private Stored store(BrowserSession session, String conversationId, String content, String model, Instant now,
            ReplyGeneration generation) {
        Conversation conversation;
        List<ChatMessage> history;
        boolean switched = false;
        String modelBefore = null;
        if (conversationId == null) {
            conversation = new Conversation(UUID.randomUUID().toString(), session.key().id(), title(content), model,
                    now, now);
            repository.insertConversation(conversation);
            history = List.of();
        } else {
            conversation = repository.lockConversation(conversationId, session.key().id())
                    .orElseThrow(() -> ApiProblem.notFound("No conversation " + conversationId + "."));
            history = repository.messages(conversation.id());
            if (history.stream().anyMatch(m -> ChatMessage.STREAMING.equals(m.status()) && isLive(m))) {
                throw ApiProblem.conflict("A reply is still being generated in this conversation: stop it or wait.");
            }
            if (model != null && !model.equals(conversation.model())) {
                switched = true;
                modelBefore = conversation.model();
                repository.setModel(conversation.id(), model);
                conversation = new Conversation(conversation.id(), conversation.keyId(), conversation.title(), model,
                        conversation.createdAt(), conversation.updatedAt());
            }
        }
        int seq = repository.nextSeq(conversation.id());
        ChatMessage user = new ChatMessage(UUID.randomUUID().toString(), conversation.id(), seq, ChatMessage.USER,
                content, ChatMessage.COMPLETE, null, null, session.tokenHash(), null, null, now);
        ChatMessage reply = new ChatMessage(generation.messageId(), conversation.id(), seq + 1,
                ChatMessage.ASSISTANT, "", ChatMessage.STREAMING, null, null, session.tokenHash(), null, null, now);
        repository.insertMessage(user);
        repository.insertMessage(reply);
        replies.add(generation);
        return new Stored(conversation, history, user, reply, switched, modelBefore);
    }

    /**
     * Opens the reply's stream for its session, resuming after {@code lastEventId}; empty when
     * there is nothing left to send (the answer is then 204).
     */
    Optional<ResponseBodyEmitter> follow(BrowserSession session, String messageId, String lastEventIdHeader,
            HttpServletRequest request) {
        ChatMessage message = ownedReply(session, messageId);
        long lastEventId = parseLastEventId(lastEventIdHeader);
        Optional<ReplyGeneration> found = replies.find(message.id());
        if (found.isEmpty()) {
            if (shared.isPresent()) {
                // generated by another instance (or finished): its events are in Redis
                return shared.get().follow(message.id(), lastEventId, () -> isStreaming(message.id()),
                        () -> completeAsync(request));
            }
            return Optional.empty(); // finished (or this gateway restarted): the stored message has it all
        }
        ReplyGeneration generation = found.get();
        if (generation.isComplete() && lastEventId >= generation.lastEventId()) {
            return Optional.empty();
        }
        if (lastEventId > generation.lastEventId()) {
            throw ApiProblem.badRequest("Last-Event-ID " + lastEventId + " is past the last event of this reply.");
        }
        ResponseBodyEmitter emitter = new ResponseBodyEmitter(streamTimeout.toMillis());
        ReplySubscriber subscriber = new ReplySubscriber(emitter, lastEventId, () -> completeAsync(request));
        emitter.onCompletion(() -> subscriber.close(generation));
        emitter.onTimeout(() -> subscriber.close(generation));
        emitter.onError(error -> subscriber.close(generation));
        generation.subscribe(subscriber);
        return Optional.of(emitter);
    }

    /** Ends an event-stream exchange whose write failed; a no-op once the container has ended it. */
    private static void completeAsync(HttpServletRequest request) {
        try {
            if (request.isAsyncStarted()) {
                request.getAsyncContext().complete();
            }
        } catch (RuntimeException alreadyEnded) {
            // completed or recycled meanwhile (Tomcat discards request facades): nothing to do
        }
    }

    /** Stop: the model stops, the partial reply is kept and marked stopped. Idempotent. */
    void cancel(BrowserSession session, String messageId) {
        ChatMessage message = ownedReply(session, messageId);
        Optional<ReplyGeneration> local = replies.find(message.id());
        if (local.isPresent()) {
            local.get().cancel();
        } else if (shared.isPresent() && isStreaming(message.id())) {
            shared.get().requestCancel(message.id()); // the instance generating it stops it
        }
    }

    private boolean isStreaming(String messageId) {
        return repository.findMessage(messageId).map(m -> ChatMessage.STREAMING.equals(m.status())).orElse(false);
    }

    /** Text of a reply still being generated, for showing a conversation mid-stream. */
    Optional<String> liveText(String messageId) {
        Optional<ReplyGeneration> local = replies.find(messageId);
        if (local.isEmpty() && shared.isPresent()) {
            return shared.get().textSoFar(messageId); // generated by another instance
        }
        return local.filter(g -> !g.isComplete()).map(ReplyGeneration::textSoFar);
    }

    private ChatMessage ownedReply(BrowserSession session, String messageId) {
        // Another session's reply answers like a missing one: ids are not proof of access.
        return repository.findMessage(messageId)
                .filter(m -> ChatMessage.ASSISTANT.equals(m.role()) && session.tokenHash().equals(m.sessionHash()))
                .orElseThrow(() -> ApiProblem.notFound("No reply " + messageId + " in this session."));
    }

    private boolean isLive(ChatMessage message) {
        Optional<ReplyGeneration> local = replies.find(message.id());
        if (local.isEmpty() && shared.isPresent()) {
            // another instance generates it (one that died has it failed by ReplyLeases within a lease)
            return ChatMessage.STREAMING.equals(message.status());
        }
        return local.map(g -> !g.isComplete()).orElse(false);
    }

    private void storeEnding(ReplyGeneration generation, String content, String status, String finishReason,
            String errorMessage, Object usage) {
        Integer promptTokens = null;
        Integer completionTokens = null;
        if (usage != null) {
            Map<?, ?> counts = json.convertValue(usage, Map.class);
            promptTokens = counts.get("prompt_tokens") instanceof Number n ? n.intValue() : null;
            completionTokens = counts.get("completion_tokens") instanceof Number n ? n.intValue() : null;
        }
        try {
            repository.finishReply(generation.messageId(), content, status, finishReason, errorMessage,
                    promptTokens, completionTokens);
        } catch (RuntimeException e) {
            log.error("could not store the end of reply {}", generation.messageId(), e);
        } finally {
            replies.retire(generation);
        }
    }

    private ObjectNode request(String conversationModel, List<ChatMessage> history, String content) {
        ObjectNode body = json.createObjectNode();
        String model = models.requestModel(conversationModel);
        if (model != null) {
            body.put("model", model);
        }
        ArrayNode messages = body.putArray("messages");
        for (ChatMessage m : context(history)) {
            messages.addObject().put("role", m.role()).put("content", m.content());
        }
        messages.addObject().put("role", ChatMessage.USER).put("content", content);
        body.put("stream", true);
        body.put("max_tokens", properties.maxTokens());
        return body;
    }

    /**
     * The earlier turns sent with a new message: whole question/answer pairs whose answer has text
     * (a failed or empty reply would read as the model's own words, and two user turns in a row
     * break some chat templates), newest first until the message or character budget is spent.
     */
    private List<ChatMessage> context(List<ChatMessage> history) {
        List<ChatMessage[]> pairs = new ArrayList<>();
        ChatMessage question = null;
        for (ChatMessage m : history) {
            if (ChatMessage.USER.equals(m.role())) {
                question = m;
            } else if (question != null && !m.content().isBlank() && !ChatMessage.ERROR.equals(m.status())
                    && !ChatMessage.STREAMING.equals(m.status())) {
                pairs.add(new ChatMessage[] {question, m});
                question = null;
            }
        }
        List<ChatMessage> context = new ArrayList<>();
        long chars = 0;
        for (int i = pairs.size() - 1; i >= 0; i--) {
            ChatMessage[] pair = pairs.get(i);
            chars += pair[0].content().length() + pair[1].content().length();
            if (context.size() + 2 > properties.historyMessages() || chars > properties.historyChars()) {
                break;
            }
            context.add(0, pair[1]);
            context.add(0, pair[0]);
        }
        return context;
    }

    private static long parseLastEventId(String header) {
        if (header == null || header.isBlank()) {
            return 0;
        }
        try {
            long id = Long.parseLong(header.strip());
            if (id < 0) {
                throw new NumberFormatException();
            }
            return id;
        } catch (NumberFormatException e) {
            throw ApiProblem.badRequest("Last-Event-ID must be an event id of this stream.");
        }
    }

    static String title(String content) {
        String oneLine = content.strip().replaceAll("\\s+", " ");
        if (oneLine.codePointCount(0, oneLine.length()) <= TITLE_CHARS) {
            return oneLine;
        }
        // cut between code points, never inside an emoji's surrogate pair, and between words when the
        // cut falls inside one and a space in its second half allows (CJK text has none: it is cut anywhere)
        String head = oneLine.substring(0, oneLine.offsetByCodePoints(0, TITLE_CHARS - 1));
        int space = head.lastIndexOf(' ');
        if (oneLine.charAt(head.length()) != ' ' && space >= 0
                && head.codePointCount(0, space) >= (TITLE_CHARS - 1) / 2) {
            head = head.substring(0, space);
        }
        return head + "…";
    }
}
