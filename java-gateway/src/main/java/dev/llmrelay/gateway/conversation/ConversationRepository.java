package dev.llmrelay.gateway.conversation;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

import dev.llmrelay.gateway.system.StoredText;

/** Conversations and their messages in the gateway database. */
@Repository
class ConversationRepository {

    private static final String CONVERSATION_COLUMNS = "id, key_id, title, model, created_at, updated_at";
    private static final String MESSAGE_COLUMNS = "id, conversation_id, seq, role, content, status, finish_reason, "
            + "error_message, session_hash, prompt_tokens, completion_tokens, created_at";

    private final JdbcClient jdbc;

    ConversationRepository(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    void insertConversation(Conversation c) {
        jdbc.sql("INSERT INTO conversation (id, key_id, title, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
                .params(c.id(), c.keyId(), StoredText.encode(c.title()), c.model(), Timestamp.from(c.createdAt()),
                        Timestamp.from(c.updatedAt()))
                .update();
    }

    /** The conversation if it exists and belongs to this key. */
    Optional<Conversation> findConversation(String id, long keyId) {
        return jdbc.sql("SELECT " + CONVERSATION_COLUMNS + " FROM conversation WHERE id = ? AND key_id = ?")
                .params(id, keyId)
                .query(ConversationRepository::mapConversation).optional();
    }

    /** Like {@link #findConversation}, and locks the row until the transaction ends (sends queue here). */
    Optional<Conversation> lockConversation(String id, long keyId) {
        return jdbc.sql("SELECT " + CONVERSATION_COLUMNS + " FROM conversation WHERE id = ? AND key_id = ? "
                        + "FOR UPDATE")
                .params(id, keyId)
                .query(ConversationRepository::mapConversation).optional();
    }

    List<Conversation> listConversations(long keyId, int limit) {
        return jdbc.sql("SELECT " + CONVERSATION_COLUMNS + " FROM conversation WHERE key_id = ? "
                        + "ORDER BY updated_at DESC, id LIMIT ?")
                .params(keyId, limit)
                .query(ConversationRepository::mapConversation).list();
    }

    /** The model the conversation's replies come from from now on (null: the default). */
    void setModel(String id, String model) {
        jdbc.sql("UPDATE conversation SET model = ? WHERE id = ?").params(model, id).update();
    }

    void touchConversation(String id, Instant now) {
        jdbc.sql("UPDATE conversation SET updated_at = ? WHERE id = ?").params(Timestamp.from(now), id).update();
    }

    boolean deleteConversation(String id, long keyId) {
        // messages go with it (ON DELETE CASCADE)
        return jdbc.sql("DELETE FROM conversation WHERE id = ? AND key_id = ?").params(id, keyId).update() > 0;
    }

    int nextSeq(String conversationId) {
        return jdbc.sql("SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_message WHERE conversation_id = ?")
                .param(conversationId).query(Integer.class).single();
    }

    /** A streaming reply is stored with its lease taken (alive_at, see {@link ReplyLeases}). */
    void insertMessage(ChatMessage m) {
        jdbc.sql("INSERT INTO chat_message (" + MESSAGE_COLUMNS + ", alive_at) "
                        + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .params(m.id(), m.conversationId(), m.seq(), m.role(), StoredText.encode(m.content()), m.status(),
                        m.finishReason(), StoredText.encode(m.errorMessage()), m.sessionHash(), m.promptTokens(),
                        m.completionTokens(),
                        Timestamp.from(m.createdAt()),
                        ChatMessage.STREAMING.equals(m.status()) ? Timestamp.from(m.createdAt()) : null)
                .update();
    }

    void deleteMessage(String id) {
        jdbc.sql("DELETE FROM chat_message WHERE id = ?").param(id).update();
    }

    List<ChatMessage> messages(String conversationId) {
        return jdbc.sql("SELECT " + MESSAGE_COLUMNS + " FROM chat_message WHERE conversation_id = ? ORDER BY seq")
                .param(conversationId)
                .query(ConversationRepository::mapMessage).list();
    }

    Optional<ChatMessage> findMessage(String id) {
        return jdbc.sql("SELECT " + MESSAGE_COLUMNS + " FROM chat_message WHERE id = ?").param(id)
                .query(ConversationRepository::mapMessage).optional();
    }

    /** Writes how a reply ended; only a reply still marked streaming is changed (the first end wins). */
    boolean finishReply(String id, String content, String status, String finishReason, String errorMessage,
            Integer promptTokens, Integer completionTokens) {
        return jdbc.sql("UPDATE chat_message SET content = ?, status = ?, finish_reason = ?, error_message = ?, "
                        + "prompt_tokens = ?, completion_tokens = ? WHERE id = ? AND status = 'streaming'")
                .params(StoredText.encode(content), status, finishReason, StoredText.encode(errorMessage), promptTokens,
                        completionTokens, id)
                .update() > 0;
    }

    /** Renews the lease of these replies (those this gateway is generating), 500 ids a statement. */
    void renewLeases(List<String> messageIds, Instant now) {
        for (int from = 0; from < messageIds.size(); from += 500) {
            jdbc.sql("UPDATE chat_message SET alive_at = :now WHERE status = 'streaming' AND id IN (:ids)")
                    .param("now", Timestamp.from(now))
                    .param("ids", messageIds.subList(from, Math.min(from + 500, messageIds.size()))).update();
        }
    }

    /**
     * Replies still streaming whose lease ran out before {@code staleBefore}: the gateway generating
     * them stopped, and nothing will ever finish them. Rows from before leases count from creation.
     */
    int failAbandonedReplies(String errorMessage, Instant staleBefore) {
        return jdbc.sql("UPDATE chat_message SET status = 'error', error_message = ? "
                        + "WHERE status = 'streaming' AND COALESCE(alive_at, created_at) < ?")
                .params(StoredText.encode(errorMessage), Timestamp.from(staleBefore)).update();
    }

    private static Conversation mapConversation(ResultSet rs, int row) throws SQLException {
        return new Conversation(rs.getString("id"), rs.getLong("key_id"),
                StoredText.decode(rs.getString("title")), rs.getString("model"), rs.getTimestamp("created_at").toInstant(),
                rs.getTimestamp("updated_at").toInstant());
    }

    private static ChatMessage mapMessage(ResultSet rs, int row) throws SQLException {
        return new ChatMessage(rs.getString("id"), rs.getString("conversation_id"), rs.getInt("seq"),
                rs.getString("role"), StoredText.decode(rs.getString("content")), rs.getString("status"),
                rs.getString("finish_reason"), StoredText.decode(rs.getString("error_message")),
                rs.getString("session_hash"),
                (Integer) rs.getObject("prompt_tokens", Integer.class),
                (Integer) rs.getObject("completion_tokens", Integer.class),
                rs.getTimestamp("created_at").toInstant());
    }
}
