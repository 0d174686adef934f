package dev.llmrelay.gateway.conversation;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;

import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Browser replies left {@code streaming} by a gateway that died: nothing will ever finish them, so they
 * must read as failed soon, without touching replies another live gateway (same database) is still
 * generating. The database already holds a crashed gateway's reply when this gateway starts.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
class AbandonedRepliesTest {

    private static final String DB = "jdbc:h2:mem:abandoned-replies;DB_CLOSE_DELAY=-1";
    private static final String KEY = "sk-abandoned-replies";
    private static final GatedUpstream upstream;

    static {
        try {
            upstream = new GatedUpstream();
        } catch (java.io.IOException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) throws Exception {
        // before the gateway starts: the schema, and a reply a crashed gateway left streaming 2 minutes ago
        Flyway.configure().dataSource(DB, "sa", "").locations("classpath:db/migration").outOfOrder(true).load()
                .migrate();
        Instant twoMinutesAgo = Instant.now().minus(Duration.ofMinutes(2));
        try (Connection db = DriverManager.getConnection(DB, "sa", "")) {
            insertConversation(db, "c-crashed", twoMinutesAgo);
            insertReply(db, "m-crashed", "c-crashed", 1, twoMinutesAgo);
        }
        registry.add("spring.datasource.url", () -> DB);
        registry.add("gateway.upstreams", upstream::url);
        registry.add("gateway.bootstrap-key", () -> KEY);
        registry.add("gateway.web-dir", () -> "");
        registry.add("server.shutdown", () -> "immediate");
    }

    static void insertConversation(Connection db, String id, Instant at) throws Exception {
        try (PreparedStatement insert = db.prepareStatement(
                "INSERT INTO conversation (id, key_id, title, created_at, updated_at) VALUES (?, 1, 't', ?, ?)")) {
            insert.setString(1, id);
            insert.setTimestamp(2, Timestamp.from(at));
            insert.setTimestamp(3, Timestamp.from(at));
            insert.executeUpdate();
        }
    }

    static void insertReply(Connection db, String id, String conversationId, int seq, Instant at) throws Exception {
        try (PreparedStatement insert = db.prepareStatement("INSERT INTO chat_message (id, conversation_id, seq, "
                + "role, content, status, created_at) VALUES (?, ?, ?, 'assistant', 'partial', 'streaming', ?)")) {
            insert.setString(1, id);
            insert.setString(2, conversationId);
            insert.setInt(3, seq);
            insert.setTimestamp(4, Timestamp.from(at));
            insert.executeUpdate();
        }
    }

    @AfterAll
    static void stopUpstream() {
        upstream.close();
    }

    @LocalServerPort
    int port;
    @Autowired
    JdbcClient jdbc;

    private final ObjectMapper json = new ObjectMapper();

    private String status(String messageId) {
        return jdbc.sql("SELECT status FROM chat_message WHERE id = ?").param(messageId).query(String.class).single();
    }

    @Test
    void aReplyACrashedGatewayLeftStreamingIsFailedWhenTheGatewayStarts() {
        assertThat(status("m-crashed")).isEqualTo("error");
        assertThat(jdbc.sql("SELECT error_message FROM chat_message WHERE id = 'm-crashed'").query(String.class)
                .single()).isEqualTo("The gateway stopped before this reply finished.");
        assertThat(jdbc.sql("SELECT content FROM chat_message WHERE id = 'm-crashed'").query(String.class).single())
                .isEqualTo("partial");
    }

    @Autowired
    ReplyLeases leases;

    @Test
    void onlyRepliesWhoseLeaseRanOutAreFailedWhileLiveGatewaysKeepTheirsLeased() throws Exception {
        Instant now = Instant.now();
        Instant tenMinutesAgo = now.minus(Duration.ofMinutes(10));
        // another gateway's reply: started long ago, its lease renewed just now
        jdbc.sql("INSERT INTO conversation (id, key_id, title, created_at, updated_at) VALUES ('c-peer', 1, 't', ?, ?)")
                .params(Timestamp.from(tenMinutesAgo), Timestamp.from(tenMinutesAgo)).update();
        jdbc.sql("INSERT INTO chat_message (id, conversation_id, seq, role, content, status, created_at, alive_at) "
                + "VALUES ('m-peer', 'c-peer', 1, 'assistant', '', 'streaming', ?, ?)")
                .params(Timestamp.from(tenMinutesAgo), Timestamp.from(now)).update();
        // a reply whose gateway stopped renewing it two minutes ago
        jdbc.sql("INSERT INTO chat_message (id, conversation_id, seq, role, content, status, created_at, alive_at) "
                + "VALUES ('m-stale', 'c-peer', 2, 'assistant', '', 'streaming', ?, ?)")
                .params(Timestamp.from(tenMinutesAgo), Timestamp.from(now.minus(Duration.ofMinutes(2)))).update();

        // this gateway's own reply, being generated; its lease made to look as old as the stale one's
        GatedUpstream.GatedStream stream = upstream.nextStream();
        BrowserHttp browser = new BrowserHttp(port);
        String cookie = browser.signIn(KEY);
        HttpResponse<String> sent = browser.post("/api/chat/messages", "{\"content\":\"hello\"}", cookie);
        assertThat(sent.statusCode()).isEqualTo(200);
        String mine = json.readTree(sent.body()).path("messageId").asText();
        jdbc.sql("UPDATE chat_message SET created_at = ?, alive_at = ? WHERE id = ?")
                .params(Timestamp.from(tenMinutesAgo), Timestamp.from(now.minus(Duration.ofMinutes(2))), mine)
                .update();

        leases.renew();
        leases.failAbandoned();
        assertThat(status("m-peer")).isEqualTo("streaming");
        assertThat(status("m-stale")).isEqualTo("error");
        assertThat(status(mine)).isEqualTo("streaming");

        // and this gateway still finishes its own reply normally
        stream.token("Hi").finish("stop", 3, 1);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!status(mine).equals("complete") && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(status(mine)).isEqualTo("complete");
    }
}
