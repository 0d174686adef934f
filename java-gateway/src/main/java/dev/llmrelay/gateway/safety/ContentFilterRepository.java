package dev.llmrelay.gateway.safety;

import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

import dev.llmrelay.gateway.safety.FilterRules.Action;
import dev.llmrelay.gateway.safety.FilterRules.ListRules;
import dev.llmrelay.gateway.safety.FilterRules.PatternRule;

@Repository
public class ContentFilterRepository {

    private final JdbcClient jdbc;
    private final JdbcTemplate batch;

    ContentFilterRepository(JdbcClient jdbc, JdbcTemplate batch) {
        this.jdbc = jdbc;
        this.batch = batch;
    }

    /** Every list with its entries, in name order. */
    List<ListRules> loadAll() {
        Map<Long, String> names = new LinkedHashMap<>();
        Map<Long, Object[]> heads = new LinkedHashMap<>();
        jdbc.sql("SELECT id, name, action, check_prompt FROM content_filter_list ORDER BY name").query(rs -> {
            names.put(rs.getLong(1), rs.getString(2));
            heads.put(rs.getLong(1), new Object[] {rs.getString(3), rs.getBoolean(4)});
        });
        Map<Long, List<String>> words = new LinkedHashMap<>();
        Map<Long, List<PatternRule>> patterns = new LinkedHashMap<>();
        jdbc.sql("SELECT list_id, kind, pattern, max_length FROM content_filter_entry ORDER BY id").query(rs -> {
            long list = rs.getLong(1);
            if ("regex".equals(rs.getString(2))) {
                patterns.computeIfAbsent(list, l -> new ArrayList<>())
                        .add(new PatternRule(rs.getString(3), rs.getInt(4)));
            } else {
                words.computeIfAbsent(list, l -> new ArrayList<>()).add(rs.getString(3));
            }
        });
        List<ListRules> lists = new ArrayList<>();
        names.forEach((id, name) -> lists.add(new ListRules(name, Action.valueOf((String) heads.get(id)[0]),
                (Boolean) heads.get(id)[1], List.copyOf(words.getOrDefault(id, List.of())),
                List.copyOf(patterns.getOrDefault(id, List.of())))));
        return lists;
    }

    Optional<Long> idOf(String name) {
        return jdbc.sql("SELECT id FROM content_filter_list WHERE name = ?").param(name).query(Long.class).optional();
    }

    long entryCount() {
        return jdbc.sql("SELECT COUNT(*) FROM content_filter_entry").query(Long.class).single();
    }

    long entryCount(long listId) {
        return jdbc.sql("SELECT COUNT(*) FROM content_filter_entry WHERE list_id = ?").param(listId)
                .query(Long.class).single();
    }

    /** Creates or replaces the list {@code name} with exactly these entries (call inside a transaction). */
    long replace(String name, Action action, boolean checkPrompt, List<String> words, List<PatternRule> patterns,
            Instant now) {
        Optional<Long> existing = idOf(name);
        long id;
        if (existing.isPresent()) {
            id = existing.get();
            jdbc.sql("UPDATE content_filter_list SET action = ?, check_prompt = ?, updated_at = ? WHERE id = ?")
                    .params(action.name(), checkPrompt, Timestamp.from(now), id).update();
            jdbc.sql("DELETE FROM content_filter_entry WHERE list_id = ?").param(id).update();
        } else {
            jdbc.sql("INSERT INTO content_filter_list (name, action, check_prompt, updated_at) VALUES (?, ?, ?, ?)")
                    .params(name, action.name(), checkPrompt, Timestamp.from(now)).update();
            id = idOf(name).orElseThrow();
        }
        addEntries(id, words, patterns);
        return id;
    }

    void addEntries(long listId, List<String> words, List<PatternRule> patterns) {
        List<Object[]> rows = new ArrayList<>(words.size() + patterns.size());
        for (String word : words) {
            rows.add(new Object[] {listId, "word", word, null});
        }
        for (PatternRule pattern : patterns) {
            rows.add(new Object[] {listId, "regex", pattern.regex(), pattern.maxLength()});
        }
        batch.batchUpdate("INSERT INTO content_filter_entry (list_id, kind, pattern, max_length) VALUES (?, ?, ?, ?)",
                rows);
    }

    void touch(long listId, Instant now) {
        jdbc.sql("UPDATE content_filter_list SET updated_at = ? WHERE id = ?").params(Timestamp.from(now), listId)
                .update();
    }

    boolean delete(String name) {
        return jdbc.sql("DELETE FROM content_filter_list WHERE name = ?").param(name).update() > 0;
    }

    public record HitRow(String requestId, Long keyId, String list, String action, String side, int matches,
            Instant createdAt) {
    }

    void insertHits(List<HitRow> hits) {
        List<Object[]> rows = new ArrayList<>();
        for (HitRow h : hits) {
            rows.add(new Object[] {h.requestId(), h.keyId(), h.list(), h.action(), h.side(), h.matches(),
                    Timestamp.from(h.createdAt())});
        }
        batch.batchUpdate("INSERT INTO content_filter_hit (request_id, key_id, list_name, action, side, matches, "
                + "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows);
    }

    List<HitRow> recentHits(int limit) {
        return jdbc.sql("SELECT request_id, key_id, list_name, action, side, matches, created_at FROM "
                        + "content_filter_hit ORDER BY id DESC LIMIT ?").param(limit)
                .query((rs, n) -> new HitRow(rs.getString(1), (Long) rs.getObject(2), rs.getString(3),
                        rs.getString(4), rs.getString(5), rs.getInt(6), rs.getTimestamp(7).toInstant()))
                .list();
    }
}
